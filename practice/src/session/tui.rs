//! The terminal of the full screen, set up and restored in one place: raw mode and the
//! alternate screen while a [`Tui`] lives, restored when it drops (a normal end, an
//! abandon, Ctrl-C, an error) and by ratatui's panic hook (installed by
//! `ratatui::try_init`) before a panic's message is printed. Keys and resizes come
//! from crossterm on a thread, as events on the session's channel.

use std::sync::mpsc::Sender;
use std::thread;

use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, Event as TermEvent, KeyCode, KeyEventKind, KeyModifiers};

use super::Event;
use super::draw;
use super::input::{Input, Scroll};

/// The full screen, for as long as it lives.
pub struct Tui {
    pub terminal: DefaultTerminal,
}

impl Tui {
    /// Enters the full screen when the terminal is big enough for it; `None`: the
    /// session keeps the line view.
    pub fn enter() -> Option<Tui> {
        let (w, h) = ratatui::crossterm::terminal::size().ok()?;
        if !draw::fits(w, h) {
            return None;
        }
        match ratatui::try_init() {
            Ok(terminal) => Some(Tui { terminal }),
            Err(_) => {
                ratatui::restore();
                None
            }
        }
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// What a terminal event means to the session, if anything.
fn event_of(ev: TermEvent) -> Option<Event> {
    let input = match ev {
        TermEvent::Resize(..) => return Some(Event::Resized),
        TermEvent::Key(k) if k.kind != KeyEventKind::Release => match k.code {
            // Raw mode: Ctrl-C is a key, not a signal.
            KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => Input::Interrupt,
            KeyCode::Char(c) => Input::Key(c),
            KeyCode::Up => Input::Scroll(Scroll::Up),
            KeyCode::Down => Input::Scroll(Scroll::Down),
            KeyCode::PageUp => Input::Scroll(Scroll::PageUp),
            KeyCode::PageDown => Input::Scroll(Scroll::PageDown),
            KeyCode::Home => Input::Scroll(Scroll::Top),
            KeyCode::Left => Input::Scroll(Scroll::Left),
            KeyCode::Right => Input::Scroll(Scroll::Right),
            KeyCode::Esc => Input::Back,
            KeyCode::Tab => Input::SwitchPane,
            _ => return None,
        },
        _ => return None,
    };
    Some(Event::Input(input))
}

/// Reads the terminal's events on a thread for the rest of the process.
pub fn spawn_reader(tx: Sender<Event>) {
    thread::spawn(move || {
        loop {
            let ev = match event::read() {
                Ok(ev) => ev,
                Err(_) => {
                    let _ = tx.send(Event::Input(Input::Closed));
                    return;
                }
            };
            if let Some(ev) = event_of(ev)
                && tx.send(ev).is_err()
            {
                return;
            }
        }
    });
}
