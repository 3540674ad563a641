//! A save's build without cargo. When cargo compiles a kata's library with its tests,
//! the launcher keeps that rustc command (cargo prints it under `-vv`, with the
//! variables it sets) and what else the build read: every file of the workspace but the
//! kata's own sources (rustc's dep-info names those), the libraries the command links,
//! rustc itself and cargo's own settings, each with its modification time and size, and
//! every folder but those of the kata's sources (a file added or removed, a new build
//! script say, changes its folder's time). While none of them has changed, a save runs the command again directly: cargo would
//! spend about 0.2 s finding that only the kata needs compiling (it resolves the workspace
//! and checks some 240 build units). Anything else changed or gone, another cargo holding
//! the build directory, a rustc that fails without a compiler error: cargo builds.
//!
//! The command is kept in `.practice/builds/<crate>.json` with a hash of the launcher's
//! whole environment, which must be the same for it to run again (the variables cargo
//! and the build scripts read). Cargo's own record of the kata goes stale (its sources
//! are newer than its last build), so cargo's next build compiles the kata once more: it
//! never trusts a build it did not make.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::libtest::without_parent_dirs;
use crate::process::{self, Cancel, Finished};
use crate::runner::TestBinary;
use crate::state::Practice;

/// A rustc command as cargo printed it: `` Running `VAR=value … rustc ARGS` ``.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rustc {
    pub env: Vec<(String, String)>,
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl Rustc {
    /// The command cargo ran for the library of `crate_name` in test mode, among its
    /// `-vv` messages.
    pub fn of_cargo(stderr: &str, crate_name: &str) -> Option<Rustc> {
        let mut rest = stderr;
        let mut found = None;
        while let Some(i) = rest.find("Running `") {
            let (words, after) = shell_words(&rest[i + "Running `".len()..])?;
            rest = after;
            let crate_is = |name: &str| {
                words
                    .windows(2)
                    .any(|w| w[0] == "--crate-name" && w[1] == name)
            };
            if crate_is(crate_name) && words.iter().any(|w| w == "--test") {
                found = Some(words);
            }
        }
        let words = found?;
        let at = words.iter().position(|w| !is_assignment(w))?;
        let env = words[..at]
            .iter()
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(Rustc {
            env,
            program: PathBuf::from(&words[at]),
            args: words[at + 1..].to_vec(),
        })
    }

    fn arg(&self, name: &str) -> Option<&str> {
        self.args
            .windows(2)
            .find(|w| w[0] == name)
            .map(|w| w[1].as_str())
    }

    /// The folder of its outputs (`target/debug/deps`).
    fn out_dir(&self) -> Option<PathBuf> {
        self.arg("--out-dir").map(PathBuf::from)
    }

    /// What it writes, without an extension: `<out-dir>/<crate>-<hash>`.
    fn output(&self) -> Option<PathBuf> {
        let name = self.arg("--crate-name")?;
        let extra = self
            .args
            .iter()
            .find_map(|a| a.strip_prefix("extra-filename="))
            .unwrap_or("");
        Some(self.out_dir()?.join(format!("{name}{extra}")))
    }

    /// rustc's dep-info of this build: `<out-dir>/<crate>-<hash>.d`.
    fn dep_info(&self) -> Option<PathBuf> {
        Some(self.output()?.with_extension("d"))
    }

    /// The test binary it writes, and its package's manifest.
    pub fn binary(&self) -> Option<TestBinary> {
        let manifest = self.env.iter().find(|(k, _)| k == "CARGO_MANIFEST_PATH")?;
        Some(TestBinary {
            executable: self.output()?,
            manifest_path: PathBuf::from(&manifest.1),
            libdir: None,
        })
    }

    /// The libraries it links (`--extern name=path`).
    fn externs(&self) -> impl Iterator<Item = PathBuf> + '_ {
        self.args
            .windows(2)
            .filter(|w| w[0] == "--extern")
            .filter_map(|w| w[1].split_once('=').map(|(_, p)| PathBuf::from(p)))
    }
}

/// `NAME=value`, as cargo prints the variables it sets before the program.
fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(k, _)| {
        !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// The words of a shell command as cargo quotes them (`'…'`, with `'\''` for a quote),
/// up to the backquote that ends it; and the text after it.
fn shell_words(s: &str) -> Option<(Vec<String>, &str)> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '`' => {
                words.extend(word);
                return Some((words, &s[i + 1..]));
            }
            ' ' | '\n' | '\t' => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        (_, '\'') => break,
                        (_, c) => w.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).push(chars.next()?.1),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    None
}

/// The files rustc read for a build, from its dep-info (`path:` lines, spaces escaped).
fn sources(dep_info: &str) -> Vec<PathBuf> {
    dep_info
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.strip_suffix(':'))
        .map(|p| PathBuf::from(p.replace("\\ ", " ")))
        .collect()
}

/// When a file last changed (seconds and nanoseconds since 1970) and its size; `None`
/// when it is not there.
type Stamp = Option<(u64, u32, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    let t = m.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some((t.as_secs(), t.subsec_nanos(), m.len()))
}

/// A hash of the launcher's environment (its values are not written down).
fn environment() -> u64 {
    use std::hash::{Hash, Hasher};
    let mut env: Vec<_> = std::env::vars_os().collect();
    env.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    env.hash(&mut h);
    h.finish()
}

/// Whether a file name is an editor's own (vim's `.lib.rs.swp`, Emacs's lock `.#lib.rs`
/// and auto-save `#lib.rs#`, backups `lib.rs~`): no build reads it, an editor rewrites it
/// as you type.
pub fn is_editor_scratch(name: &str) -> bool {
    name.starts_with(['.', '#']) || name.ends_with('~')
}

/// Every file under `dir` but version control's, build outputs (a cargo target folder
/// holds `CACHEDIR.TAG`), the launcher's own `.practice/` and editors' scratch files
/// ([`is_editor_scratch`]), which a build never reads but an editor rewrites as you
/// type; and in `dirs`, the folders walked (`dir` first): a file added
/// or removed changes its folder's time (a new `build.rs`, a `rust-toolchain.toml`).
fn walk(dir: &Path, out: &mut Vec<PathBuf>, dirs: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    dirs.push(dir.to_path_buf());
    for e in entries.flatten() {
        let p = e.path();
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            let name = e.file_name();
            if name != ".git" && name != ".practice" && !p.join("CACHEDIR.TAG").exists() {
                walk(&p, out, dirs);
            }
        } else {
            if !is_editor_scratch(&e.file_name().to_string_lossy()) {
                out.push(p);
            }
        }
    }
}

/// A kept command and what it depends on.
#[derive(Serialize, Deserialize)]
struct Kept {
    rustc: Rustc,
    /// The launcher's environment when cargo ran (see [`environment`]).
    environment: u64,
    inputs: Vec<(PathBuf, Stamp)>,
    /// The toolchain's library folder (`rustc --print target-libdir`), for the test run;
    /// `None` when the program is not rustc (a `RUSTC_WRAPPER` such as sccache).
    libdir: Option<PathBuf>,
}

fn kept_path(repo: &Path, crate_name: &str) -> PathBuf {
    Practice::new(repo)
        .builds_dir()
        .join(format!("{crate_name}.json"))
}

/// Keeps `rustc` (cargo's command for `crate_name`) with the stamps of everything but
/// the kata's own sources; nothing when any of them changed after `started` (the build
/// may have read it either way) or cannot be read.
pub fn keep(repo: &Path, crate_name: &str, rustc: Rustc, started: SystemTime) {
    let started = stamp_time(started);
    let kept = (|| {
        rustc.binary()?;
        let (rustc, libdir) = match toolchain(repo, &rustc) {
            Some((compiler, libdir)) => (
                Rustc {
                    program: compiler,
                    ..rustc
                },
                Some(libdir),
            ),
            None => (rustc, None),
        };
        let dep_info = std::fs::read_to_string(rustc.dep_info()?).ok()?;
        // `src/../tests/steps.rs` (a `#[path]` module) is the walk's `tests/steps.rs`.
        let own: Vec<PathBuf> = sources(&dep_info)
            .iter()
            .map(|p| PathBuf::from(without_parent_dirs(&repo.join(p).to_string_lossy())))
            .collect();
        let (mut files, mut dirs) = (Vec::new(), Vec::new());
        walk(repo, &mut files, &mut dirs);
        files.retain(|f| !own.contains(f));
        // The folders of the kata's own sources change as an editor saves (a temporary
        // file renamed over lib.rs), and what is added there rustc reads itself (a new
        // module file); any other folder with a file added or removed sends the build to
        // cargo.
        dirs.retain(|d| !own.iter().any(|f| f.parent() == Some(d.as_path())));
        files.extend(dirs);
        files.extend(rustc.externs());
        // The compiler itself, and rustup's choice of toolchain (`rustup default`).
        files.push(rustc.program.clone());
        let rustup_home = std::env::var_os("RUSTUP_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".rustup")));
        files.extend(rustup_home.map(|h| h.join("settings.toml")));
        // The toolchain's cargo: a new toolchain replaces it.
        files.extend(
            rustc
                .env
                .iter()
                .filter(|(k, _)| k == "CARGO")
                .map(|(_, v)| PathBuf::from(v)),
        );
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
        if let Some(home) = home {
            files.push(home.join("config.toml"));
            files.push(home.join("config"));
        }
        let mut inputs = Vec::with_capacity(files.len());
        for f in files {
            let s = stamp(&f);
            if s.is_some_and(|(secs, nanos, _)| (secs, nanos) >= started) {
                return None;
            }
            inputs.push((f, s));
        }
        Some(Kept {
            rustc,
            environment: environment(),
            inputs,
            libdir,
        })
    })();
    let path = kept_path(repo, crate_name);
    let written = kept.and_then(|k| {
        std::fs::create_dir_all(path.parent()?).ok()?;
        std::fs::write(&path, serde_json::to_string(&k).ok()?).ok()
    });
    if written.is_none() {
        forget(repo, crate_name);
    }
}

/// The compiler cargo ran (`rustc` is most often rustup's proxy, which costs a start of
/// its own on every save and may pick another toolchain later) and the toolchain's
/// library folder, asked of it once as the command is kept: `(<sysroot>/bin/rustc, libdir)`;
/// `None` when the program does not answer as rustc does (a wrapper), which is then run
/// as cargo ran it.
fn toolchain(repo: &Path, rustc: &Rustc) -> Option<(PathBuf, PathBuf)> {
    let out = Command::new(&rustc.program)
        .current_dir(repo)
        .envs(rustc.env.iter().map(|(k, v)| (k, v)))
        .args(["--print", "sysroot", "--print", "target-libdir"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let (sysroot, libdir) = (lines.next()?, lines.next()?);
    let compiler = Path::new(sysroot)
        .join("bin")
        .join(format!("rustc{}", std::env::consts::EXE_SUFFIX));
    compiler
        .is_file()
        .then(|| (compiler, PathBuf::from(libdir)))
}

fn stamp_time(t: SystemTime) -> (u64, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs(), d.subsec_nanos())
}

/// Forgets the command of `crate_name`: the next build is cargo's.
pub fn forget(repo: &Path, crate_name: &str) {
    let _ = std::fs::remove_file(kept_path(repo, crate_name));
}

/// What a build without cargo gave.
pub enum Built {
    /// Compiled: the binary to run.
    Binary(TestBinary),
    /// rustc found errors in the code: its messages, as cargo would show them.
    Errors(String),
    TimedOut,
    Cancelled,
}

/// Builds `crate_name` with its kept command, when nothing it depends on has changed
/// and no other cargo holds the build directory; `None`: cargo must build.
pub fn build(
    repo: &Path,
    crate_name: &str,
    timeout: Duration,
    cancel: &Cancel,
    log: &mut String,
) -> Result<Option<Built>> {
    let kept = std::fs::read_to_string(kept_path(repo, crate_name))
        .ok()
        .and_then(|text| serde_json::from_str::<Kept>(&text).ok())
        .filter(|k| k.environment == environment())
        .filter(|k| k.inputs.iter().all(|(f, s)| stamp(f) == *s));
    let Some((rustc, binary)) = kept.and_then(|k| {
        let binary = TestBinary {
            libdir: k.libdir,
            ..k.rustc.binary()?
        };
        Some((k.rustc, binary))
    }) else {
        return Ok(None);
    };
    // cargo's lock on the build directory (`target/debug/.cargo-lock`), held while rustc runs.
    let Some(_lock) = rustc
        .out_dir()
        .and_then(|d| Some(d.parent()?.join(".cargo-lock")))
        .and_then(|p| try_lock(&p))
    else {
        return Ok(None);
    };
    let mut c = Command::new(&rustc.program);
    c.current_dir(repo)
        .args(&rustc.args)
        .envs(rustc.env.iter().map(|(k, v)| (k, v)));
    let Ok(f) = process::run_logged(c, timeout, cancel, log, None) else {
        // It did not start: cargo builds, and tells.
        forget(repo, crate_name);
        return Ok(None);
    };
    if f.cancelled {
        return Ok(Some(Built::Cancelled));
    }
    if f.timed_out {
        return Ok(Some(Built::TimedOut));
    }
    let (rendered, errors) = rendered_diagnostics(&f);
    if f.success() {
        return Ok(Some(Built::Binary(binary)));
    }
    if errors == 0 {
        // Not the code: cargo builds, and tells.
        forget(repo, crate_name);
        return Ok(None);
    }
    Ok(Some(Built::Errors(rendered)))
}

/// rustc's JSON diagnostics (`--error-format=json`) as text without colours, and how
/// many errors they hold.
fn rendered_diagnostics(f: &Finished) -> (String, usize) {
    let mut out = String::new();
    let mut errors = 0;
    for line in f.stderr.lines() {
        let Ok(m) = serde_json::from_str::<serde_json::Value>(line) else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        if m["$message_type"] != "diagnostic" {
            continue;
        }
        if m["level"] == "error" {
            errors += 1;
        }
        if let Some(r) = m["rendered"].as_str() {
            out.push_str(&without_ansi(r));
        }
    }
    (out, errors)
}

/// Text without its ANSI colour codes (`ESC [ … m`).
fn without_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// An exclusive lock on `path`, if nobody holds it for more than a moment (a run the
/// session has just stopped for a newer save may still be letting go); released when
/// dropped.
fn try_lock(path: &Path) -> Option<File> {
    let f = File::options().read(true).write(true).open(path).ok()?;
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        for _ in 0..20 {
            // SAFETY: flock on a file descriptor this function owns.
            let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if r == 0 {
                return Some(f);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
    #[cfg(not(unix))]
    {
        let _ = f;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargos_command_for_the_library_tests_is_read_with_its_variables() {
        let stderr = "       Fresh fixtures v0.1.0 (/r/fixtures)\n   Compiling toy_kata v0.1.0 (/r/katas/toy_kata)\n     Running `CARGO=/t/bin/cargo CARGO_CRATE_NAME=toy_kata CARGO_PKG_DESCRIPTION='A toy: it'\\''s small' CARGO_PKG_README='' /t/bin/rustc --crate-name toy_kata --edition=2024 katas/toy_kata/src/lib.rs --test -C extra-filename=-0123 --out-dir /r/target/debug/deps --check-cfg 'cfg(feature, values(\"reference\"))'`\n     Running `CARGO=/t/bin/cargo /t/bin/rustc --crate-name other --test`\n";
        let r = Rustc::of_cargo(stderr, "toy_kata").unwrap();
        assert_eq!(
            r.env,
            vec![
                ("CARGO".to_string(), "/t/bin/cargo".to_string()),
                ("CARGO_CRATE_NAME".into(), "toy_kata".into()),
                ("CARGO_PKG_DESCRIPTION".into(), "A toy: it's small".into()),
                ("CARGO_PKG_README".into(), "".into()),
            ]
        );
        assert_eq!(r.program, PathBuf::from("/t/bin/rustc"));
        assert_eq!(
            r.args.last().unwrap(),
            "cfg(feature, values(\"reference\"))"
        );
        assert_eq!(
            r.dep_info(),
            Some(PathBuf::from("/r/target/debug/deps/toy_kata-0123.d"))
        );
        assert_eq!(Rustc::of_cargo(stderr, "missing"), None);
        // Not in test mode: not the step tests' build.
        assert_eq!(
            Rustc::of_cargo(
                "     Running `/t/rustc --crate-name toy_kata`\n",
                "toy_kata"
            ),
            None
        );
    }

    #[test]
    fn the_compiler_behind_rustups_proxy_and_its_library_folder_are_found() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let rustc = Rustc {
            env: Vec::new(),
            program: PathBuf::from("rustc"),
            args: Vec::new(),
        };
        let (compiler, libdir) = toolchain(repo, &rustc).expect("rustc answers");
        assert!(compiler.is_absolute() && compiler.is_file(), "{compiler:?}");
        let std_there = std::fs::read_dir(&libdir)
            .expect("the library folder exists")
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"));
        assert!(std_there, "no libstd in {libdir:?}");
        // The compiler found is the one that answered: it names the same folder.
        let again = Command::new(&compiler)
            .args(["--print", "target-libdir"])
            .output()
            .expect("the compiler runs");
        assert_eq!(
            String::from_utf8_lossy(&again.stdout).trim(),
            libdir.to_string_lossy()
        );
        // A wrapper that does not answer as rustc does is kept as cargo ran it.
        if cfg!(unix) {
            let wrapper = Rustc {
                program: PathBuf::from("true"),
                ..rustc
            };
            assert_eq!(toolchain(repo, &wrapper), None);
        }
    }

    #[test]
    fn a_dep_info_names_the_sources_rustc_read() {
        let d = "/r/target/debug/deps/toy_kata-0123: katas/toy_kata/src/lib.rs katas/toy_kata/tests/my\\ steps.rs\n\n/r/target/debug/deps/toy_kata-0123.d: katas/toy_kata/src/lib.rs\n\nkatas/toy_kata/src/lib.rs:\nkatas/toy_kata/tests/my\\ steps.rs:\n\n# env-dep:CARGO_MANIFEST_DIR=/r/katas/toy_kata\n";
        assert_eq!(
            sources(d),
            vec![
                PathBuf::from("katas/toy_kata/src/lib.rs"),
                PathBuf::from("katas/toy_kata/tests/my steps.rs"),
            ]
        );
    }

    #[test]
    fn the_walk_skips_build_outputs_history_and_editors_scratch_files() {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            "Cargo.toml",
            "src/lib.rs",
            ".cargo/config.toml",
            "src/.lib.rs.swp",
            "src/lib.rs~",
            "src/#lib.rs#",
            "target/CACHEDIR.TAG",
            "target/debug/x",
            ".git/HEAD",
            ".practice/current.json",
        ];
        for f in files {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        let (mut found, mut dirs) = (Vec::new(), Vec::new());
        walk(dir.path(), &mut found, &mut dirs);
        found.sort();
        dirs.sort();
        let walked: Vec<PathBuf> = ["", ".cargo", "src"]
            .iter()
            .map(|d| dir.path().join(d))
            .collect();
        assert_eq!(dirs, walked);
        let expected: Vec<PathBuf> = [".cargo/config.toml", "Cargo.toml", "src/lib.rs"]
            .iter()
            .map(|f| dir.path().join(f))
            .collect();
        assert_eq!(found, expected);
    }

    #[cfg(unix)]
    #[test]
    fn the_build_directory_lock_is_taken_only_when_cargo_does_not_hold_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".cargo-lock");
        std::fs::write(&path, "").unwrap();
        let held = try_lock(&path).expect("a free lock");
        assert!(
            try_lock(&path).is_none(),
            "held by another file description"
        );
        drop(held);
        assert!(try_lock(&path).is_some());
    }

    #[test]
    fn rustcs_messages_lose_their_colours() {
        assert_eq!(
            without_ansi("\u{1b}[1m\u{1b}[91merror\u{1b}[0m\u{1b}[1m: expected `;`\u{1b}[0m"),
            "error: expected `;`"
        );
    }
}
