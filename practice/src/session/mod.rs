//! A practice session (guided, timed or interview): the timer, the watcher that reruns
//! the step tests on every save, the checklist, hints, grading, pause and abandon.
//!
//! Split like rustlings' `watch/`: `app` holds the state and what each event does to it
//! (no terminal I/O), `keys` the key bindings, `view` the text shown, `input` and
//! `notify` turn keys and saves into events, `jobs` runs tests and gradings on threads.
//! Two views: on a terminal big enough, the full screen (`tui` sets the terminal up
//! and reads its keys, `draw` draws the state); otherwise, or with `--plain`, the line
//! view (`screen`). The loop below connects them: everything arrives as an event on
//! one channel (keys or lines, resizes, file changes, progress, finished runs); five
//! times a second it redraws the screen (or the status bar), ends an interview at its
//! limit, notices a signal and saves the attempt every few seconds.

mod app;
mod draw;
mod input;
mod jobs;
pub mod keys;
mod notify;
mod screen;
mod tui;
pub mod view;

use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use anyhow::Result;

use crate::Ctx;
use crate::grade::Graded;
use crate::kata::Kata;
use crate::runner::{Progress, Report};
use crate::signals;
use crate::state::Attempt;
pub use app::App;
use input::{Input, KeyMode};
use screen::Screen;

/// How often the screen (or the status bar) is redrawn and the clock checked without events.
const TICK: Duration = Duration::from_millis(200);

/// Everything that happens to a session.
pub enum Event {
    Input(Input),
    /// The terminal changed size (full screen).
    Resized,
    /// A `.rs` file in the watched folder was saved.
    Changed,
    WatchFailed(String),
    /// What the run `id` is doing.
    Progress(u64, Progress),
    /// The test run `id` finished.
    Ran(u64, Result<Report>),
    /// The grading `id` finished.
    Graded(u64, Result<Graded>),
}

/// Runs the attempt until it ends or is paused: on the full screen when both ends are a
/// terminal big enough and `--plain` was not given, else in the line view.
pub fn run(ctx: &Ctx, kata: &Kata, attempt: Attempt) -> Result<ExitCode> {
    signals::install()?;
    let (tx, rx) = mpsc::channel();
    let tty = ctx.stdin_tty && ctx.stdout_tty;
    // Each restores the terminal when it drops, on every way out of this function.
    let mut full = if tty && !ctx.plain {
        tui::Tui::enter()
    } else {
        None
    };
    let key_mode = if tty && full.is_none() {
        KeyMode::enable()
    } else {
        None
    };
    let keys = full.is_some() || key_mode.is_some();
    let mut app = App::new(ctx, kata, attempt, tx.clone(), keys);
    app.save()?;
    if full.is_some() {
        tui::spawn_reader(tx.clone());
    } else {
        input::spawn_reader(key_mode.is_some(), tx.clone(), Event::Input);
    }
    let _watcher = if app.on_program() {
        None
    } else {
        Some(notify::watch(&app.watched_dir(), tx)?)
    };
    let mut screen = Screen::new(ctx.stdout_tty);
    app.begin();
    loop {
        let exit = if signals::pending() {
            Some(app.pause("Ctrl-C", ExitCode::from(130))?)
        } else {
            match rx.recv_timeout(TICK) {
                Ok(ev) => app.on_event(ev)?,
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    Some(app.pause("input closed", ExitCode::SUCCESS)?)
                }
            }
        };
        let exit = match exit {
            Some(code) => Some(code),
            None => app.on_tick()?,
        };
        let said = app.take_output();
        if let Some(tui) = full.as_mut() {
            if exit.is_none() {
                tui.terminal.draw(|frame| draw::draw(frame, &app))?;
                continue;
            }
            // Back to the normal screen first: what the end said (the last checklist,
            // the summary, where the code is) stays in the terminal's scrollback.
            full = None;
        }
        for text in said {
            screen.print(&text);
        }
        if let Some(code) = exit {
            screen.finish();
            return Ok(code);
        }
        screen.status(&view::status_line(&app));
    }
}
