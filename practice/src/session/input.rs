//! The learner's input on a thread: single keys without Enter (and without echo) on a
//! terminal, typed lines otherwise (a pipe, a test, a script).

use std::io::BufRead;
use std::sync::mpsc::Sender;
use std::thread;

/// What the input thread hands to the session.
#[derive(Debug)]
pub enum Input {
    Key(char),
    Line(String),
    Closed,
    /// Ctrl-C pressed on the full screen (raw mode: it is a key, not a signal).
    Interrupt,
    /// The failure pane moved (arrows, page keys) on the full screen.
    Scroll(Scroll),
    /// Esc on the full screen: back to the current step's contract.
    Back,
    /// Tab on the full screen: the scroll keys move the other pane (failure or side).
    SwitchPane,
}

/// A move of the pane that has the focus (the failure pane, or the side pane after Tab).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scroll {
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Left,
    Right,
}

/// Keys without Enter and without echo, for as long as the guard lives.
pub struct KeyMode {
    #[cfg(unix)]
    original: libc::termios,
}

impl KeyMode {
    #[cfg(unix)]
    pub fn enable() -> Option<KeyMode> {
        // SAFETY: termios is plain data; tcgetattr fills it for fd 0, which is a terminal here.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return None;
            }
            let original = t;
            // Keep ISIG (Ctrl-C stays a signal) and output processing; drop line editing and echo.
            t.c_lflag &= !(libc::ICANON | libc::ECHO);
            t.c_cc[libc::VMIN] = 1;
            t.c_cc[libc::VTIME] = 0;
            if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
                return None;
            }
            Some(KeyMode { original })
        }
    }

    #[cfg(not(unix))]
    pub fn enable() -> Option<KeyMode> {
        None
    }
}

impl Drop for KeyMode {
    fn drop(&mut self) {
        #[cfg(unix)]
        // SAFETY: restores the settings read in `enable`.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &self.original);
        }
    }
}

/// Reads the user's commands on a thread: single keys when `keys`, lines otherwise.
pub fn spawn_reader<E: Send + 'static>(keys: bool, tx: Sender<E>, wrap: fn(Input) -> E) {
    thread::spawn(move || {
        if keys {
            #[cfg(unix)]
            loop {
                let mut buf = [0u8; 64];
                // SAFETY: reads into a local buffer from fd 0.
                let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
                if n < 0
                    && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
                {
                    continue;
                }
                if n <= 0 {
                    let _ = tx.send(wrap(Input::Closed));
                    return;
                }
                let text = String::from_utf8_lossy(&buf[..n as usize]).into_owned();
                // Arrow keys and other escape sequences are not commands.
                if text.starts_with('\x1b') {
                    continue;
                }
                for c in text.chars() {
                    if tx.send(wrap(Input::Key(c))).is_err() {
                        return;
                    }
                }
            }
        }
        let stdin = std::io::stdin();
        let mut line = String::new();
        loop {
            line.clear();
            match stdin.lock().read_line(&mut line) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(wrap(Input::Closed));
                    return;
                }
                Ok(_) => {
                    if tx.send(wrap(Input::Line(line.trim().to_string()))).is_err() {
                        return;
                    }
                }
            }
        }
    });
}
