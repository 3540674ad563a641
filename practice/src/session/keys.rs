//! The key bindings, spelled once: the single-key handler, the typed-line handler, the
//! help text and the status bar all read [`BINDINGS`].

use crate::state::Mode;

/// What the learner asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    /// A hint: the current step's, or step N's (1-based).
    Hint(Option<usize>),
    /// A digit key: step N's hint, once confirmed by the same key again (a digit is
    /// easily hit by accident, and a hint is counted in the learner's history).
    HintKey(usize),
    Run,
    Grade,
    /// The last checklist (or verdict) again.
    Show,
    Pause,
    Abandon,
    Help,
    Yes,
    No,
    Nothing,
    Unknown(String),
}

/// What the keys can do in an attempt: its mode, and whether it is written in the
/// blank program (graded) or in the step file (tested).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    pub mode: Mode,
    pub program: bool,
}

impl Context {
    /// Hints are for guided mode on the step file.
    pub fn hints(self) -> bool {
        self.mode == Mode::Guided && !self.program
    }
    /// The step file has step tests to run.
    pub fn tests(self) -> bool {
        !self.program
    }
    /// The whole program is graded; an interview on the step file too (by its tests).
    pub fn grades(self) -> bool {
        self.program || self.mode == Mode::Interview
    }
    fn always(self) -> bool {
        true
    }
    fn never(self) -> bool {
        false
    }
}

/// One command: the keys and the typed words that give it, and how the help and the
/// status bar name it.
pub struct Binding {
    keys: &'static [char],
    words: &'static [&'static str],
    cmd: fn() -> Cmd,
    /// Its name in the status bar and the one-line list of keys.
    short: &'static str,
    /// What it does, for `?`.
    long: &'static str,
    /// Offered in this context. The others still answer, to say why not.
    offered: fn(Context) -> bool,
    /// Shown in the status bar (which has little room).
    in_bar: bool,
}

pub const BINDINGS: &[Binding] = &[
    Binding {
        keys: &['h'],
        words: &["h", "hint"],
        cmd: || Cmd::Hint(None),
        short: "hint",
        long: "the hint for the first step not yet green (counted; once per step)",
        offered: Context::hints,
        in_bar: true,
    },
    Binding {
        keys: &['r'],
        words: &["r", "run"],
        cmd: || Cmd::Run,
        short: "run",
        long: "run the step tests now (a save runs them too)",
        offered: Context::tests,
        in_bar: true,
    },
    Binding {
        keys: &['g'],
        words: &["g", "grade"],
        cmd: || Cmd::Grade,
        short: "grade",
        long: "build your program and grade it end to end on fresh data",
        offered: Context::grades,
        in_bar: true,
    },
    Binding {
        keys: &['s'],
        words: &["s", "show", "status", "checklist"],
        cmd: || Cmd::Show,
        short: "show",
        long: "the last checklist (or verdict) again",
        offered: Context::always,
        in_bar: false,
    },
    Binding {
        keys: &['p', 'q'],
        words: &["p", "pause", "q", "quit"],
        cmd: || Cmd::Pause,
        short: "pause",
        long: "save the attempt and stop; `cargo practice` resumes it (Ctrl-C too)",
        offered: Context::always,
        in_bar: true,
    },
    Binding {
        keys: &['a'],
        words: &["a", "abandon"],
        cmd: || Cmd::Abandon,
        short: "abandon",
        long: "end it: your code archived, recorded as abandoned, the kata restored",
        offered: Context::always,
        in_bar: true,
    },
    Binding {
        keys: &['?'],
        words: &["?", "help"],
        cmd: || Cmd::Help,
        short: "help",
        long: "this list",
        offered: Context::always,
        in_bar: true,
    },
    Binding {
        keys: &['y', 'Y'],
        words: &["y", "yes"],
        cmd: || Cmd::Yes,
        short: "",
        long: "",
        offered: Context::never,
        in_bar: false,
    },
    Binding {
        keys: &['n', 'N'],
        words: &["n", "no"],
        cmd: || Cmd::No,
        short: "",
        long: "",
        offered: Context::never,
        in_bar: false,
    },
];

/// A key pressed on a terminal. In guided mode a digit asks for that step's hint.
pub fn from_key(c: char, ctx: Context) -> Cmd {
    if ctx.hints()
        && let Some(n) = c.to_digit(10).filter(|&n| n > 0)
    {
        return Cmd::HintKey(n as usize);
    }
    BINDINGS
        .iter()
        .find(|b| b.keys.contains(&c))
        .map_or(Cmd::Nothing, |b| (b.cmd)())
}

/// A line typed when input is not a terminal: a command word, and for a hint a step number.
pub fn from_line(line: &str) -> Cmd {
    let mut words = line.split_whitespace();
    let Some(first) = words.next() else {
        return Cmd::Nothing;
    };
    let Some(b) = BINDINGS.iter().find(|b| b.words.contains(&first)) else {
        return Cmd::Unknown(line.to_string());
    };
    match ((b.cmd)(), words.next()) {
        (Cmd::Hint(None), Some(n)) => n
            .parse()
            .map_or_else(|_| Cmd::Unknown(line.to_string()), |n| Cmd::Hint(Some(n))),
        (cmd, _) => cmd,
    }
}

fn offered(ctx: Context) -> impl Iterator<Item = &'static Binding> {
    BINDINGS.iter().filter(move |b| (b.offered)(ctx))
}

fn label(b: &Binding, ctx: Context) -> &'static str {
    match (b.short, ctx.program) {
        ("show", true) => "last verdict",
        ("show", false) => "checklist",
        (s, _) => s,
    }
}

/// The keys in one line: `h hint · r run · …`, for the intro and the status bar.
pub fn line(ctx: Context, bar: bool) -> String {
    offered(ctx)
        .filter(|b| !bar || b.in_bar)
        .map(|b| format!("{} {}", b.keys[0], label(b, ctx)))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The keys as the intro states them: single keys on a terminal, typed words otherwise.
pub fn intro(ctx: Context, keys: bool) -> String {
    if keys {
        let digits = if ctx.hints() {
            " · 1-9 twice: the hint for that step"
        } else {
            ""
        };
        format!("Keys: {}{digits} (Ctrl-C pauses too)", line(ctx, false))
    } else {
        let digits = if ctx.hints() {
            " · h N: the hint for step N"
        } else {
            ""
        };
        format!("Commands (type, then Enter): {}{digits}", line(ctx, false))
    }
}

/// `?`: every key offered here, with what it does.
pub fn help(ctx: Context, keys: bool) -> String {
    let mut out = String::from(if keys {
        "Keys (Ctrl-C pauses too):\n"
    } else {
        "Commands (type one, then Enter):\n"
    });
    for b in offered(ctx) {
        let name = if keys {
            b.keys
                .iter()
                .map(char::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            b.words[..2.min(b.words.len())].join(", ")
        };
        out.push_str(&format!("  {name:<10} {}\n", b.long));
    }
    if ctx.hints() {
        let (name, how) = if keys {
            (
                "1-9",
                "the hint for step N: press the digit twice (counted)",
            )
        } else {
            ("h N", "the hint for step N (counted)")
        };
        out.push_str(&format!("  {name:<10} {how}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Context; 4] = [
        Context {
            mode: Mode::Guided,
            program: false,
        },
        Context {
            mode: Mode::Timed,
            program: false,
        },
        Context {
            mode: Mode::Timed,
            program: true,
        },
        Context {
            mode: Mode::Interview,
            program: true,
        },
    ];

    #[test]
    fn every_key_and_word_in_the_help_gives_its_command() {
        for ctx in ALL {
            for b in offered(ctx) {
                for &k in b.keys {
                    assert_eq!(from_key(k, ctx), (b.cmd)(), "{k} in {ctx:?}");
                }
                for w in b.words {
                    assert_eq!(from_line(w), (b.cmd)(), "{w}");
                }
                let text = help(ctx, true);
                assert!(text.contains(b.long), "{text}");
                assert!(line(ctx, false).contains(&format!("{} {}", b.keys[0], label(b, ctx))));
            }
        }
    }

    #[test]
    fn each_context_offers_its_own_keys() {
        let [guided, timed_steps, timed_program, interview] = ALL;
        assert_eq!(
            line(guided, true),
            "h hint · r run · p pause · a abandon · ? help"
        );
        assert_eq!(
            line(timed_steps, true),
            "r run · p pause · a abandon · ? help"
        );
        assert_eq!(
            line(timed_program, true),
            "g grade · p pause · a abandon · ? help"
        );
        assert_eq!(line(interview, true), line(timed_program, true));
        assert_eq!(
            line(interview, false),
            "g grade · s last verdict · p pause · a abandon · ? help"
        );
    }

    #[test]
    fn hints_by_number_and_unknown_words() {
        let guided = ALL[0];
        assert_eq!(from_key('3', guided), Cmd::HintKey(3));
        assert_eq!(from_key('3', ALL[1]), Cmd::Nothing);
        assert_eq!(from_line("h 2"), Cmd::Hint(Some(2)));
        assert_eq!(from_line("hint x"), Cmd::Unknown("hint x".into()));
        assert_eq!(from_line("dance"), Cmd::Unknown("dance".into()));
        assert_eq!(from_line("  "), Cmd::Nothing);
        // Keys not offered still answer (to say why not).
        assert_eq!(from_key('h', ALL[2]), Cmd::Hint(None));
    }
}
