//! The command line. Kata names (`batch`, `kafka`, `parquet`, …) are subcommands added
//! at run time from `katas/*/kata.toml`, so a kata that lands shows up in `--help`.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::kata::{Catalog, Kata};
use crate::state::{Mode, clock};

const ABOUT: &str = "Practise ETL pipelines until you can write them from memory: guided steps with hints, \
timed runs against target times, interview simulations from a blank file, graded by step tests and a whole-program grader.";

const EXAMPLES: &str = "\
Examples:
  cargo practice                          the menu (arrow keys; typed answers without a terminal)
  cargo practice batch                    guided: the step file, hints, tests rerun on every save
  cargo practice batch --mode timed       the whole program from a blank file, against the clock
  cargo practice batch -m timed --steps   the step file against the clock, a split per step
  cargo practice kafka -m interview       the limit counts down, no hints, press g to be graded
  cargo practice parquet -m reference     run the reference pipeline and show its output
  cargo practice grade batch              grade your blank program on fresh data
  cargo practice drill batch              your weakest steps only, timed; the rest is your own code
  cargo practice status                   attempt in progress, levels, modified katas
  cargo practice history --kata batch     attempts, chart against target/expert, bests, levels
  cargo practice hint batch 3             the hint for step 3 (guided mode)
  cargo practice reset batch              archive your code, restore the kata (--all: every kata)
  cargo practice solution batch           the reference solution, once an attempt has ended
  cargo practice guide                    the learning path, the levels and interview tips";

#[derive(Debug, Parser)]
#[command(name = "cargo practice", bin_name = "cargo practice", version, about = ABOUT, after_help = EXAMPLES)]
pub struct Cli {
    /// The kata repository (default: found from the current directory upwards)
    #[arg(long, global = true, value_name = "DIR")]
    pub repo: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Where you are: the attempt in progress, each kata's level, best time and files
    #[command(after_help = "Examples:\n  cargo practice status")]
    Status,
    /// Your attempts: a table, a chart of times against the target and expert lines, bests, levels
    #[command(
        after_help = "Examples:\n  cargo practice history\n  cargo practice history --kata batch --last 10"
    )]
    History {
        /// Only this kata
        #[arg(long, value_name = "KATA")]
        kata: Option<String>,
        /// How many attempts to list and chart
        #[arg(long, value_name = "N", default_value_t = 20)]
        last: usize,
    },
    /// The hint for one step: counted in a guided attempt, refused during timed and interview ones
    #[command(
        after_help = "Examples:\n  cargo practice hint batch 3\n  cargo practice hint batch clean\n  cargo practice hint kafka step_04_watermark"
    )]
    Hint {
        /// The kata (see `cargo practice status`)
        kata: String,
        /// Step number (1-based), function name or test name
        step: String,
    },
    /// Archive your code under .practice/attempts/, then restore the pristine kata from git
    #[command(
        after_help = "Only the kata's folder is touched. Refuses, touching nothing, outside a git checkout, \
and while tracked files outside katas/ are modified unless --force is given (on a terminal it asks). \
A paused attempt on the kata ends as `reset` in the history.

Examples:
  cargo practice reset batch
  cargo practice reset --all
  cargo practice reset batch --force      even with files outside katas/ modified"
    )]
    Reset {
        /// The kata to reset
        #[arg(required_unless_present = "all")]
        kata: Option<String>,
        /// Reset every kata
        #[arg(long, conflicts_with = "kata")]
        all: bool,
        /// Reset even while tracked files outside katas/ are modified (they are left alone)
        #[arg(long)]
        force: bool,
    },
    /// Print a kata's reference solution (only after an attempt at it has ended)
    #[command(
        after_help = "Levels: beginner (every line explained), intermediate (the interview answer, the default), \
expert (production: logs, counts, dead letters, exactly-once).

Examples:
  cargo practice solution batch
  cargo practice solution kafka --level beginner
  cargo practice solution batch --diff            against your last attempt"
    )]
    Solution {
        /// The kata
        kata: String,
        /// beginner, intermediate or expert
        #[arg(long, value_name = "LEVEL", default_value = "intermediate")]
        level: String,
        /// Show it as a diff against your last archived attempt at the kata
        #[arg(long)]
        diff: bool,
    },
    /// Grade a whole program on fresh data, as in an interview (exit 0 when it passes)
    #[command(
        after_help = grade_help()
    )]
    Grade {
        /// The kata
        kata: String,
        /// The program to grade (default: the kata's blank program)
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// The seed of the fresh data (default: random; the verdict prints it)
        #[arg(long)]
        seed: Option<u64>,
        /// Kill the program with SIGKILL at N random moments and restart it (Kafka → Parquet)
        #[arg(long, value_name = "N")]
        chaos: Option<u32>,
        /// Keep the fresh data and the outputs, and print where they are
        #[arg(long)]
        keep: bool,
    },
    /// Run a kata's step tests once and print the checklist (exit 0 when every step passes)
    #[command(
        after_help = "With --pristine, the check for CI (rustlings' `dev check`, for katas): each kata as \
committed must be unsolved step by step. Every step test fails on its own step's `todo!(\"step N: …\")`, \
no test passes, and kata.toml lists exactly the step tests; exit 1 naming what does not hold.

Examples:
  cargo practice check batch
  cargo practice check --all
  cargo practice check --all --pristine"
    )]
    Check {
        /// The kata
        #[arg(required_unless_present = "all")]
        kata: Option<String>,
        /// Every kata
        #[arg(long, conflicts_with = "kata")]
        all: bool,
        /// Prove the kata is unsolved: every step test fails on its own todo!() (exit 1 otherwise)
        #[arg(long)]
        pristine: bool,
    },
    /// A timed attempt on your 1–3 weakest steps; the other steps hold your own archived code
    #[command(
        after_help = "The weakest steps, over your last 5 attempts on the step file: the slowest \
own times (a step's split minus the previous split) against the step's share of the target time, \
plus the runs in which the step failed and the hints shown for it. Only they are todo!(); every other \
step holds your code from the latest archived attempt in which it passed. Timed, no hints, recorded \
as a drill: drills do not count for levels or bests. Without a kata: the kata with the weakest step.

Examples:
  cargo practice drill
  cargo practice drill batch"
    )]
    Drill {
        /// The kata (default: the one with the weakest step)
        kata: Option<String>,
        #[command(flatten)]
        view: ViewArgs,
    },
    /// Go on with the paused attempt (Ctrl-C or p paused it)
    #[command(after_help = "Examples:\n  cargo practice resume\n  cargo practice resume --plain")]
    Resume {
        #[command(flatten)]
        view: ViewArgs,
    },
    /// The learning path, the levels and the interview tips
    #[command(after_help = "Examples:\n  cargo practice guide")]
    Guide,
}

/// `cargo practice <kata> [--mode …]`.
#[derive(Debug, Args)]
pub struct KataArgs {
    /// The practice mode
    #[arg(long, short, value_enum, default_value_t = Mode::Guided)]
    pub mode: Mode,
    /// Timed mode: practise on the step file (one function per step) instead of the
    /// blank program
    #[arg(long)]
    pub steps: bool,
    #[command(flatten)]
    pub view: ViewArgs,
}

/// How an attempt is shown.
#[derive(Debug, Args)]
pub struct ViewArgs {
    /// The line view instead of the full screen (as on a small terminal or a pipe)
    #[arg(long)]
    pub plain: bool,
}

/// Whether the command line asks for the line view (`--plain` on an attempt command).
pub fn plain(matches: &clap::ArgMatches) -> bool {
    matches.subcommand().is_some_and(|(_, sub)| {
        sub.try_get_one::<bool>("plain")
            .ok()
            .flatten()
            .copied()
            .unwrap_or(false)
    })
}

fn grade_help() -> String {
    format!(
        "Builds the program with the blank program's dependencies, runs it on freshly generated \
data (Kafka katas: the broker of the tests: {}) and prints a checklist of what it got right and wrong.

Examples:
  cargo practice grade batch                      your blank program, katas/batch_kata/program/src/main.rs
  cargo practice grade kafka --file my_stream.rs  any single-file program
  cargo practice grade parquet --chaos 5          SIGKILL it 5 times mid-run: still exactly once?",
        kafka_choice::RULE
    )
}

fn kata_help(k: &Kata) -> String {
    let mut s = String::new();
    if let Some(d) = &k.difficulty {
        let _ = write!(s, "Difficulty: {d}. ");
    }
    let _ = write!(
        s,
        "Step file: {}/src/lib.rs ({} steps; guided, timed --steps).",
        k.rel_dir(),
        k.steps.len()
    );
    if let Some(program) = k.program_rel() {
        let _ = write!(s, " Blank program: {program} (timed, interview).");
    }
    let _ = writeln!(
        s,
        " Timed: target {}, expert {}. Interview: {} limit.{}",
        clock(k.target_s()),
        clock(k.expert_s()),
        clock(k.limit_s()),
        if k.needs_kafka {
            format!(" Needs Kafka: {}.", kafka_choice::RULE)
        } else {
            String::new()
        }
    );
    let _ = write!(
        s,
        "\nExamples:\n  cargo practice {n}\n  cargo practice {n} --mode timed\n  cargo practice {n} -m interview\n  cargo practice {n} -m reference",
        n = k.name
    );
    s
}

/// The full command, with one subcommand per kata found.
pub fn command(catalog: Option<&Catalog>) -> clap::Command {
    let mut cmd = Cli::command();
    if let Some(cat) = catalog {
        let mut list = String::from("Katas (from katas/*/kata.toml):\n");
        for k in &cat.katas {
            let _ = writeln!(list, "  {:<8} {}", k.name, k.title);
            // clap keeps names as `&'static str`; the launcher lives for one command.
            let name: &'static str = Box::leak(k.name.clone().into_boxed_str());
            let sub = KataArgs::augment_args(clap::Command::new(name))
                .about(format!(
                    "{} — practise it (guided unless --mode says otherwise)",
                    k.title
                ))
                .after_help(kata_help(k))
                .display_order(0);
            cmd = cmd.subcommand(sub);
        }
        cmd = cmd.before_help(list.trim_end().to_string());
    }
    cmd
}
