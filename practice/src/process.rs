//! Child processes with a deadline: each runs in its own process group, so that a
//! timeout or a cancel kills `cargo` *and* the test binary it started (an endless
//! loop in the learner's code must not outlive the launcher).

use std::fmt::Write as _;
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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

/// How often a watched command's output is looked at.
const WATCH_EVERY: Duration = Duration::from_millis(100);
/// How often a running command is asked whether it has ended: its end is noticed this
/// late at most (a verdict waits on two commands, the build and the tests).
const POLL_EVERY: Duration = Duration::from_millis(5);

pub fn run(cmd: Command, timeout: Duration, cancel: &Cancel, output: Output) -> Result<Finished> {
    run_watched(cmd, timeout, cancel, output, None)
}

/// What a running command has printed so far (the captured streams only).
pub struct Seen<'a> {
    pub stdout: &'a str,
    pub stderr: &'a str,
    pub elapsed: Duration,
}

/// [`run`], calling `watch` (if any) with the output so far about ten times a second
/// while the command runs; when it returns true the command is stopped as if its
/// deadline had passed.
pub fn run_watched(
    mut cmd: Command,
    timeout: Duration,
    cancel: &Cancel,
    output: Output,
    mut watch: Option<&mut dyn FnMut(&Seen) -> bool>,
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
    let mut watched = start;
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
        } else if let Some(watch) = watch.as_mut()
            && watched.elapsed() >= WATCH_EVERY
        {
            watched = Instant::now();
            let (o, e) = (text_of(&out), text_of(&err));
            timed_out = watch(&Seen {
                stdout: &o,
                stderr: &e,
                elapsed: start.elapsed(),
            });
        }
        if cancelled || timed_out {
            kill_group(&mut child);
            break wait_bounded(&mut child, Duration::from_secs(10));
        }
        thread::sleep(POLL_EVERY);
    };
    let collect = |h: Option<Reader>| h.map(Reader::finish).unwrap_or_default();
    Ok(Finished {
        status,
        stdout: collect(out),
        stderr: collect(err),
        timed_out,
        cancelled,
        elapsed: start.elapsed(),
    })
}

/// [`run_watched`] with the output captured and appended to a log.
pub fn run_logged(
    cmd: Command,
    timeout: Duration,
    cancel: &Cancel,
    log: &mut String,
    watch: Option<&mut dyn FnMut(&Seen) -> bool>,
) -> Result<Finished> {
    let what = describe(&cmd);
    let f = run_watched(cmd, timeout, cancel, Output::Capture, watch)?;
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

/// A stream read to its end on a thread; what came so far can be looked at meanwhile.
struct Reader {
    buf: Arc<Mutex<Vec<u8>>>,
    done: thread::JoinHandle<()>,
}

impl Reader {
    fn finish(self) -> String {
        let _ = self.done.join();
        let buf = self.buf.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&buf).into_owned()
    }
}

fn reader<R: Read + Send + 'static>(mut r: R) -> Reader {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = buf.clone();
    let done = thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match r.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => match sink.lock() {
                    Ok(mut b) => b.extend_from_slice(&chunk[..n]),
                    Err(_) => return,
                },
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    });
    Reader { buf, done }
}

fn text_of(r: &Option<Reader>) -> String {
    r.as_ref()
        .and_then(|r| {
            r.buf
                .lock()
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        })
        .unwrap_or_default()
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
