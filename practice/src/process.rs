//! Child processes with a deadline: each runs in its own process group, so that a
//! timeout or a cancel kills `cargo` *and* the test binary it started (an endless
//! loop in the learner's code must not outlive the launcher).

use std::fmt::Write as _;
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// Shared flag that stops a running command (set by the session on a save, a pause or Ctrl-C).
#[derive(Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst) || crate::signals::pending()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Captured, returned in `Finished`.
    Capture,
    /// Shown as it comes (reference mode).
    Inherit,
    /// Standard output captured, standard error shown as it comes (logs).
    CaptureStdout,
}

#[derive(Debug)]
pub struct Finished {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    pub cancelled: bool,
    pub elapsed: Duration,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// Describes a command for messages: `cargo test -p x`.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

pub fn run(
    mut cmd: Command,
    timeout: Duration,
    cancel: &Cancel,
    output: Output,
) -> Result<Finished> {
    let what = describe(&cmd);
    cmd.stdin(Stdio::null());
    match output {
        Output::Capture => {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        Output::Inherit => {
            cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
        }
        Output::CaptureStdout => {
            cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start `{what}`"))?;
    let out = child.stdout.take().map(reader);
    let err = child.stderr.take().map(reader);
    let deadline = start + timeout;
    let (mut timed_out, mut cancelled) = (false, false);
    let status = loop {
        if let Some(st) = child
            .try_wait()
            .with_context(|| format!("cannot wait for `{what}`"))?
        {
            break Some(st);
        }
        if cancel.is_cancelled() {
            cancelled = true;
        } else if Instant::now() >= deadline {
            timed_out = true;
        }
        if cancelled || timed_out {
            kill_group(&mut child);
            break wait_bounded(&mut child, Duration::from_secs(10));
        }
        thread::sleep(Duration::from_millis(20));
    };
    let collect = |h: Option<thread::JoinHandle<String>>| {
        h.map(|h| h.join().unwrap_or_default()).unwrap_or_default()
    };
    Ok(Finished {
        status,
        stdout: collect(out),
        stderr: collect(err),
        timed_out,
        cancelled,
        elapsed: start.elapsed(),
    })
}

/// `run` with the output captured and appended to a log.
pub fn run_logged(
    cmd: Command,
    timeout: Duration,
    cancel: &Cancel,
    log: &mut String,
) -> Result<Finished> {
    let what = describe(&cmd);
    let f = run(cmd, timeout, cancel, Output::Capture)?;
    let _ = writeln!(log, "$ {what}");
    log.push_str(&f.stdout);
    log.push_str(&f.stderr);
    let end = if f.timed_out {
        "stopped: deadline passed".to_string()
    } else if f.cancelled {
        "stopped: cancelled".to_string()
    } else {
        format!("{:?}", f.status)
    };
    let _ = writeln!(log, "[{end} after {:.1} s]\n", f.elapsed.as_secs_f64());
    Ok(f)
}

fn reader<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

fn wait_bounded(child: &mut Child, bound: Duration) -> Option<ExitStatus> {
    let until = Instant::now() + bound;
    while Instant::now() < until {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        thread::sleep(Duration::from_millis(20));
    }
    None
}

fn kill_group(child: &mut Child) {
    #[cfg(unix)]
    {
        // The child leads its own process group (process_group(0) above).
        let pgid = child.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals that process group; no memory involved.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
}

/// Whether a process with this id is alive (a session running in another terminal).
pub fn is_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        if pid == std::process::id() {
            return true;
        }
        // SAFETY: signal 0 only checks that the process exists.
        let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        false
    }
}
