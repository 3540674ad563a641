//! Building a learner's single-file program in its kata's blank-program crate, and
//! running it with a deadline.
//!
//! `katas/<kata>/program` is the crate of the blank program. Without `--file`, its own
//! binary is built from its `src/main.rs`. With `--file PATH`, its `<crate>_graded`
//! binary is built from PATH (see `harness/build.rs`): the same dependencies, the same
//! target directory, so only the program itself is compiled. Builds are serialised by
//! a lock file, and each built binary is copied out before the lock is released, so
//! parallel gradings never run each other's program.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tempfile::TempDir;

use crate::Kata;

/// The repository the grader was built from.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The cargo that runs us (cargo sets `CARGO` for `cargo run` and `cargo test`).
fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// The outcome of a build.
pub enum Build {
    Program(Program),
    /// The file reaches for something a candidate may not use (the kata's steps, the
    /// solutions, another file).
    Refused(String),
    /// rustc's first error, with the file's own path in it.
    DoesNotCompile(String),
}

/// A built program, copied into a folder of its own that lives as long as it does.
pub struct Program {
    binary: PathBuf,
    library_path: OsString,
    /// The file it was built from.
    pub source: PathBuf,
    dir: TempDir,
}

/// Names a candidate's program must not contain (outside comments): the kata crates,
/// the reference solutions, and ways to compile or run another file.
const FORBIDDEN: [(&str, &str); 7] = [
    ("solutions", "the reference solutions"),
    ("solution_levels", "the reference solutions"),
    ("batch_kata", "the kata's step functions"),
    ("kafka_stream_kata", "the kata's step functions"),
    ("kafka_parquet_kata", "the kata's step functions"),
    ("#[path", "another source file"),
    ("include!", "another source file"),
];

/// Why `source` may not be graded, if it may not.
pub fn refusal(source: &str) -> Option<String> {
    for (number, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for (name, what) in FORBIDDEN {
            if code.contains(name) {
                return Some(format!(
                    "line {}: `{name}` reaches {what}; a whole-program answer may use only \
                     the crates listed at the top of the blank program",
                    number + 1
                ));
            }
        }
        if code.contains("\"cargo\"") {
            return Some(format!(
                "line {}: the program runs cargo; it must do the work itself",
                number + 1
            ));
        }
    }
    None
}

/// Builds `file` (or, without one, the kata's blank program as the learner edited it).
/// With `progress`, says on stderr what is being compiled while it takes long.
pub fn build(kata: Kata, file: Option<&Path>, progress: bool) -> anyhow::Result<Build> {
    let repo = repo_root();
    let default = repo.join(kata.program_file());
    let source = match file {
        Some(f) => f
            .canonicalize()
            .with_context(|| format!("cannot read {}", f.display()))?,
        None => default.clone(),
    };
    let text = std::fs::read_to_string(&source)
        .with_context(|| format!("cannot read {}", source.display()))?;
    if let Some(why) = refusal(&text) {
        return Ok(Build::Refused(format!("{}: {why}", source.display())));
    }
    let own_file = file.is_none() || source == default.canonicalize().unwrap_or(default);
    let bin = if own_file {
        kata.program_crate().to_string()
    } else {
        kata.graded_bin()
    };

    let target = target_dir(&repo);
    std::fs::create_dir_all(&target)
        .with_context(|| format!("cannot create {}", target.display()))?;
    let lock_path = target.join("grader-build.lock");
    let lock = File::create(&lock_path)
        .with_context(|| format!("cannot create {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("cannot lock {}", lock_path.display()))?;

    let mut cmd = Command::new(cargo());
    cmd.current_dir(&repo)
        .args(["build", "--message-format=json", "-p", kata.program_crate()])
        .args(["--bin", &bin])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if own_file {
        cmd.env_remove("KATA_PROGRAM");
    } else {
        cmd.args(["--features", "graded"])
            .env("KATA_PROGRAM", &source);
    }
    if progress {
        eprintln!("grader: building {}", source.display());
    }
    let mut child = cmd.spawn().context("cannot start cargo")?;
    let stderr = child.stderr.take().expect("piped");
    let stderr_text = Arc::new(Mutex::new(String::new()));
    let stderr_thread = {
        let text = Arc::clone(&stderr_text);
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut s);
            *text.lock().unwrap_or_else(|e| e.into_inner()) = s;
        })
    };
    let compiled = Arc::new(AtomicUsize::new(0));
    let ticker = progress.then(|| {
        let compiled = Arc::clone(&compiled);
        let started = Instant::now();
        std::thread::spawn(move || {
            let mut last = Instant::now();
            loop {
                std::thread::sleep(Duration::from_millis(250));
                if compiled.load(Ordering::Relaxed) == usize::MAX {
                    return;
                }
                if last.elapsed() >= Duration::from_secs(10) {
                    if started.elapsed() < Duration::from_secs(11) {
                        eprintln!(
                            "grader: this build compiles dependencies (the first one: DataFusion, once, a few minutes)"
                        );
                    }
                    last = Instant::now();
                    eprintln!(
                        "grader: still building ({} crates compiled, {} s)",
                        compiled.load(Ordering::Relaxed),
                        started.elapsed().as_secs()
                    );
                }
            }
        })
    });

    let mut first_error = None;
    let mut executable = None;
    let stdout = child.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo's output")?;
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        match message["reason"].as_str() {
            Some("compiler-artifact") => {
                compiled.fetch_add(1, Ordering::Relaxed);
                if message["target"]["name"].as_str() == Some(bin.as_str())
                    && let Some(exe) = message["executable"].as_str()
                {
                    executable = Some(PathBuf::from(exe));
                }
            }
            Some("compiler-message")
                if first_error.is_none() && message["message"]["level"] == "error" =>
            {
                first_error = message["message"]["rendered"].as_str().map(str::to_string);
            }
            _ => {}
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    compiled.store(usize::MAX, Ordering::Relaxed);
    if let Some(t) = ticker {
        let _ = t.join();
    }
    let _ = stderr_thread.join();
    let stderr = stderr_text
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();

    if !status.success() || executable.is_none() {
        let error = match first_error {
            Some(e) => e,
            None if !status.success() => format!("cargo build failed:\n{}", tail(&stderr, 20)),
            None => bail!("cargo built no binary `{bin}`"),
        };
        // The graded binary compiles a copy of the file: name the file itself, and
        // DataFusion's items as the file names them.
        let error = rustc_names::as_written(&name_the_source(&error, &source));
        return Ok(Build::DoesNotCompile(error));
    }
    let executable = executable.expect("checked above");
    let dir = tempfile::Builder::new()
        .prefix("kata-program-")
        .tempdir()
        .context("cannot create a temporary folder")?;
    let binary = dir.path().join(kata.program_crate());
    std::fs::copy(&executable, &binary)
        .with_context(|| format!("cannot copy {}", executable.display()))?;
    drop(lock);

    let deps = executable
        .parent()
        .map(|p| p.join("deps"))
        .unwrap_or_default();
    Ok(Build::Program(Program {
        binary,
        library_path: library_path(&deps)?,
        source,
        dir,
    }))
}

/// `CARGO_TARGET_DIR`, or the repository's `target/`.
fn target_dir(repo: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                repo.join(dir)
            }
        }
        _ => repo.join("target"),
    }
}

/// The programs link DataFusion and `std` dynamically (`-C prefer-dynamic`): their
/// library path is the target's `deps/` and the toolchain's library folder.
fn library_path(deps: &Path) -> anyhow::Result<OsString> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(&rustc)
        .args(["--print", "target-libdir"])
        .output()
        .context("cannot run rustc --print target-libdir")?;
    let libdir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut paths = vec![deps.to_path_buf(), PathBuf::from(libdir)];
    if let Some(existing) = std::env::var_os("LD_LIBRARY_PATH") {
        paths.extend(std::env::split_paths(&existing));
    }
    std::env::join_paths(paths).context("a library path with a ':' in it")
}

/// rustc names `OUT_DIR/program.rs` for a graded copy; the learner knows their file.
fn name_the_source(error: &str, source: &Path) -> String {
    error
        .lines()
        .map(|line| match line.find("/out/program.rs") {
            Some(end) => {
                let start = line[..end].rfind([' ', '>', '(']).map_or(0, |i| i + 1);
                format!(
                    "{}{}{}",
                    &line[..start],
                    source.display(),
                    &line[end + "/out/program.rs".len()..]
                )
            }
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The last `n` non-empty lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// How a bounded run ended.
#[derive(Debug, Clone)]
pub struct Run {
    /// The file the program was built from: panics name it, not the build's copy.
    pub source: PathBuf,
    /// `None` when it was killed at the deadline.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    pub deadline: Duration,
}

impl Run {
    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }

    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// What went wrong, in one line, or `None` for a clean exit:
    /// `panicked: called Option::unwrap() on a None value (src/main.rs:42:10)`.
    pub fn problem(&self) -> Option<String> {
        if self.success() {
            return None;
        }
        if self.timed_out() {
            return Some(format!(
                "did not finish within {} s and was stopped (an endless loop, or a wait \
                 without a deadline?)",
                self.deadline.as_secs()
            ));
        }
        if let Some(panic) = panic_message(&self.stderr) {
            return Some(format!(
                "panicked: {}",
                name_the_source(&panic, &self.source)
            ));
        }
        let code = self
            .status
            .and_then(|s| s.code())
            .map_or_else(|| "a signal".to_string(), |c| format!("status {c}"));
        // The first line that says `error` (clap's and anyhow's both do), else the last.
        let lines = || self.stderr.lines().filter(|l| !l.trim().is_empty());
        let last = lines()
            .find(|l| l.trim_start().to_ascii_lowercase().starts_with("error"))
            .or_else(|| lines().next_back());
        Some(match last {
            Some(line) => format!("exited with {code}: {}", line.trim()),
            None => format!("exited with {code}"),
        })
    }

    /// The end of what it printed on stderr, for the details (paths into the build's
    /// copy of the program name the program's file).
    pub fn stderr_tail(&self) -> String {
        name_the_source(&tail(&self.stderr, 15), &self.source)
    }
}

/// `thread 'main' panicked at src/main.rs:3:5:\nmessage` → `message (src/main.rs:3:5)`.
fn panic_message(stderr: &str) -> Option<String> {
    let mut lines = stderr.lines();
    while let Some(line) = lines.next() {
        if let Some(at) = line.find("panicked at ") {
            let location = line[at + "panicked at ".len()..].trim_end_matches(':');
            let message = lines.next().unwrap_or("").trim();
            return Some(format!("{message} ({location})"));
        }
    }
    None
}

/// A running program, killed when dropped.
pub struct Running {
    child: Child,
    source: PathBuf,
    started: Instant,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Running {
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Has it exited?
    pub fn try_finished(&mut self) -> anyhow::Result<bool> {
        Ok(self
            .child
            .try_wait()
            .context("waiting for the program")?
            .is_some())
    }

    /// SIGKILL, as a crash would.
    pub fn kill(mut self) -> anyhow::Result<Run> {
        let _ = self.child.kill();
        self.finish(Duration::ZERO)
    }

    /// Waits until it exits or `deadline` (since its start) passes, then kills it.
    pub fn wait(mut self, deadline: Duration) -> anyhow::Result<Run> {
        loop {
            if self
                .child
                .try_wait()
                .context("waiting for the program")?
                .is_some()
            {
                return self.finish(deadline);
            }
            if self.started.elapsed() >= deadline {
                let _ = self.child.kill();
                let mut run = self.finish(deadline)?;
                run.status = None;
                return Ok(run);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn finish(mut self, deadline: Duration) -> anyhow::Result<Run> {
        let status = self.child.wait().context("waiting for the program")?;
        let elapsed = self.started.elapsed();
        let join = |t: Option<std::thread::JoinHandle<String>>| {
            t.map(|t| t.join().unwrap_or_default()).unwrap_or_default()
        };
        let (out, err) = (join(self.stdout.take()), join(self.stderr.take()));
        Ok(Run {
            source: self.source.clone(),
            status: Some(status),
            stdout: out,
            stderr: err,
            elapsed,
            deadline,
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Program {
    /// An already built binary (a reference binary, say), graded as it is.
    pub fn from_binary(binary: &Path) -> anyhow::Result<Program> {
        let binary = binary
            .canonicalize()
            .with_context(|| format!("no program at {}", binary.display()))?;
        let deps = binary.parent().map(|p| p.join("deps")).unwrap_or_default();
        Ok(Program {
            library_path: library_path(&deps)?,
            source: binary.clone(),
            binary,
            dir: tempfile::tempdir().context("cannot create a temporary folder")?,
        })
    }

    /// A folder that lives as long as the program: for outputs and logs.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// Starts the program with `args`, capturing its output.
    pub fn start<I, S>(&self, args: I) -> anyhow::Result<Running>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut child = Command::new(&self.binary)
            .args(args)
            .current_dir(self.dir.path())
            .env("LD_LIBRARY_PATH", &self.library_path)
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", self.binary.display()))?;
        let read_all = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = r.read_to_end(&mut bytes);
                String::from_utf8_lossy(&bytes).into_owned()
            })
        };
        let stdout = read_all(Box::new(child.stdout.take().expect("piped")));
        let stderr = read_all(Box::new(child.stderr.take().expect("piped")));
        Ok(Running {
            child,
            source: self.source.clone(),
            started: Instant::now(),
            stdout: Some(stdout),
            stderr: Some(stderr),
        })
    }

    /// Runs the program to its end, killing it at `deadline`.
    pub fn run<I, S>(&self, args: I, deadline: Duration) -> anyhow::Result<Run>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.start(args)?.wait(deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_the_solutions_but_not_in_comments() {
        assert!(refusal("use solutions::batch;").is_some());
        assert!(refusal("// not solutions::batch\nfn main() {}").is_none());
        assert!(refusal("let x = batch_kata::graded::clean;").is_some());
        assert!(refusal("Command::new(\"cargo\")").is_some());
    }

    #[test]
    fn panics_are_read_from_stderr() {
        let stderr = "\nthread 'main' panicked at src/main.rs:3:5:\nboom\nnote: run with ...";
        assert_eq!(
            panic_message(stderr).as_deref(),
            Some("boom (src/main.rs:3:5)")
        );
    }
}
