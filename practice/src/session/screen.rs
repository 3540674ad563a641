//! The line view: blocks of text printed one after the other, and on a terminal a
//! one-line status bar kept at the bottom and redrawn in place.

use std::io::Write;

/// Prints blocks of text, keeping a one-line status at the bottom on a terminal.
pub struct Screen {
    tty: bool,
    status_shown: bool,
}

impl Screen {
    pub fn new(tty: bool) -> Screen {
        Screen {
            tty,
            status_shown: false,
        }
    }

    fn clear_status(&mut self, out: &mut impl Write) {
        if self.status_shown {
            let _ = write!(out, "\r\x1b[2K");
            self.status_shown = false;
        }
    }

    pub fn print(&mut self, text: &str) {
        let mut out = std::io::stdout().lock();
        self.clear_status(&mut out);
        let _ = out.write_all(text.as_bytes());
        if !text.ends_with('\n') {
            let _ = out.write_all(b"\n");
        }
        let _ = out.flush();
    }

    /// Redraws the status line (terminal only), cut to the terminal's width.
    pub fn status(&mut self, text: &str) {
        if !self.tty {
            return;
        }
        let width = console::Term::stdout().size().1 as usize;
        let line = console::truncate_str(text, width.saturating_sub(1).max(10), "…");
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "\r\x1b[2K{line}");
        let _ = out.flush();
        self.status_shown = true;
    }

    pub fn finish(&mut self) {
        let mut out = std::io::stdout().lock();
        self.clear_status(&mut out);
        let _ = out.flush();
    }
}
