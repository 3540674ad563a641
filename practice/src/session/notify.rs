//! File events: the practice file's folder is watched, and a save (of new content)
//! becomes an event for the session.
//!
//! A save is seen as the editor finishes it: when it closes the file it wrote, or renames
//! a finished temporary file over it (Linux reports both; editors save one way or the
//! other). The run starts then, without waiting. Any other change to a `.rs` file (a
//! platform that reports writes but not closes, a file created or removed) starts a run
//! once the files have been quiet for [`QUIET`].

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use super::Event;
use crate::direct::is_editor_scratch;

/// How long a change without a finished save waits for more: an editor's save is a burst
/// of events within a few milliseconds, and a run stopped by a later save restarts.
const QUIET: Duration = Duration::from_millis(50);

/// What a file event says of a `.rs` file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Written and closed, or put in place by a rename: a finished save.
    Saved,
    /// Changed, maybe not finished (written but still open, created, removed).
    Touched,
}

/// The change an event makes to a `.rs` file, if any: reads, opens and changes to other
/// files (an editor's swap and backup files) are none. A rename is a finished save when
/// it puts a `.rs` file in place (its last path), not when it moves one away (vim's
/// `lib.rs` to `lib.rs~` before it writes the new `lib.rs`).
fn change(event: &notify::Event) -> Option<Change> {
    let touched = event
        .paths
        .iter()
        .any(|p| is_source(p))
        .then_some(Change::Touched);
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => touched.map(|_| Change::Saved),
        EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)) => {
            match event.paths.last() {
                Some(to) if is_source(to) => Some(Change::Saved),
                _ => touched,
            }
        }
        EventKind::Access(_) => None,
        _ => touched,
    }
}

/// A `.rs` file of the learner's, not an editor's scratch file with that extension
/// (Emacs's lock `.#lib.rs`, made as you start typing and gone when you save).
fn is_source(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "rs")
        && path
            .file_name()
            .is_some_and(|n| !is_editor_scratch(&n.to_string_lossy()))
}

/// When to start a run: at once for a finished save, else once the files are quiet.
#[derive(Debug, Default)]
struct Debounce {
    /// A change without a finished save, waiting for the quiet to end.
    due: Option<Instant>,
}

impl Debounce {
    /// Whether `change`, seen at `now`, starts a run now.
    fn on_change(&mut self, change: Change, now: Instant) -> bool {
        match change {
            Change::Saved => {
                self.due = None;
                true
            }
            Change::Touched => {
                self.due = Some(now + QUIET);
                false
            }
        }
    }

    /// How long to wait for the next event before [`Debounce::on_quiet`].
    fn wait(&self, now: Instant) -> Option<Duration> {
        self.due.map(|d| d.saturating_duration_since(now))
    }

    /// Whether the quiet that began at the last change starts a run.
    fn on_quiet(&mut self, now: Instant) -> bool {
        match self.due {
            Some(d) if d <= now => {
                self.due = None;
                true
            }
            _ => false,
        }
    }
}

/// Turns the watcher's events into the session's, until the watcher is dropped.
fn forward(events: Receiver<notify::Result<notify::Event>>, tx: Sender<Event>) {
    let mut debounce = Debounce::default();
    loop {
        let next = match debounce.wait(Instant::now()) {
            Some(wait) => events.recv_timeout(wait),
            None => events.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let run = match next {
            Ok(Ok(event)) => change(&event).is_some_and(|c| debounce.on_change(c, Instant::now())),
            Ok(Err(e)) => {
                if tx.send(Event::WatchFailed(e.to_string())).is_err() {
                    return;
                }
                false
            }
            Err(RecvTimeoutError::Timeout) => debounce.on_quiet(Instant::now()),
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if run && tx.send(Event::Changed).is_err() {
            return;
        }
    }
}

/// Watches `dir` for changes to `.rs` files for as long as the returned value lives.
pub fn watch(dir: &Path, tx: Sender<Event>) -> Result<RecommendedWatcher> {
    let (events, received) = channel();
    let mut watcher =
        notify::recommended_watcher(events).context("cannot start watching the kata's files")?;
    watcher
        .watch(dir, RecursiveMode::Recursive)
        .with_context(|| format!("cannot watch {}", dir.display()))?;
    std::thread::Builder::new()
        .name("file-events".into())
        .spawn(move || forward(received, tx))
        .context("cannot start watching the kata's files")?;
    Ok(watcher)
}

/// A hash of every `.rs` file's path and content under `dir`: editors and tools touch
/// files without changing them, and only new content is worth a run.
pub fn fingerprint(dir: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    fn walk(dir: &Path, files: &mut Vec<(PathBuf, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, files);
            } else if is_source(&p) && p.is_file() {
                let content = std::fs::read(&p).unwrap_or_default();
                files.push((p, content));
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    files.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange};

    fn event(kind: EventKind, path: &str) -> notify::Event {
        notify::Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn a_closed_write_or_a_rename_into_place_is_a_finished_save() {
        let closed = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let renamed = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        let written = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        let created = EventKind::Create(CreateKind::File);
        let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        assert_eq!(change(&event(closed, "src/lib.rs")), Some(Change::Saved));
        assert_eq!(change(&event(renamed, "src/lib.rs")), Some(Change::Saved));
        assert_eq!(change(&event(written, "src/lib.rs")), Some(Change::Touched));
        assert_eq!(change(&event(created, "src/lib.rs")), Some(Change::Touched));
        assert_eq!(change(&event(read, "src/lib.rs")), None);
        // An editor's swap, backup and temporary files are not the kata's sources.
        assert_eq!(change(&event(closed, "src/.lib.rs.swp")), None);
        assert_eq!(change(&event(renamed, "src/lib.rs~")), None);
        assert_eq!(
            change(&event(created, "src/.#lib.rs")),
            None,
            "Emacs's lock"
        );
        // A rename counts by where it puts the file.
        let both = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        let into_place = event(both, "src/lib.rs.tmp").add_path(PathBuf::from("src/lib.rs"));
        let away = event(both, "src/lib.rs").add_path(PathBuf::from("src/lib.rs~"));
        assert_eq!(change(&into_place), Some(Change::Saved));
        assert_eq!(
            change(&away),
            Some(Change::Touched),
            "lib.rs is gone, not saved"
        );
    }

    #[test]
    fn the_fingerprint_is_the_sources_not_an_editors_scratch_files() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::write(dir.path().join("lib.rs"), "fn main() {}\n").expect("a source");
        let before = fingerprint(dir.path());
        std::fs::write(dir.path().join("lib.rs~"), "old\n").expect("a backup");
        std::fs::write(dir.path().join(".lib.rs.swp"), "swap\n").expect("a swap file");
        #[cfg(unix)]
        std::os::unix::fs::symlink("user@host.1234", dir.path().join(".#lib.rs"))
            .expect("an Emacs lock");
        assert_eq!(fingerprint(dir.path()), before);
        std::fs::write(dir.path().join("lib.rs"), "fn main() { todo!() }\n").expect("a save");
        assert_ne!(fingerprint(dir.path()), before, "new content is a change");
    }

    #[test]
    fn a_finished_save_runs_at_once_and_other_changes_after_the_quiet() {
        let t0 = Instant::now();
        let mut d = Debounce::default();
        // In place: written (still open), then closed: the run starts at the close.
        assert!(!d.on_change(Change::Touched, t0));
        assert_eq!(d.wait(t0), Some(QUIET));
        assert!(d.on_change(Change::Saved, t0 + Duration::from_millis(2)));
        assert_eq!(d.wait(t0), None, "nothing left to wait for");
        assert!(!d.on_quiet(t0 + QUIET * 2));
        // Writes without a close: one run, once the last is QUIET old.
        assert!(!d.on_change(Change::Touched, t0));
        assert!(!d.on_change(Change::Touched, t0 + Duration::from_millis(30)));
        assert!(!d.on_quiet(t0 + QUIET), "the quiet restarts at each change");
        assert!(d.on_quiet(t0 + Duration::from_millis(30) + QUIET));
        assert!(!d.on_quiet(t0 + QUIET * 3), "one run for the burst");
    }

    #[test]
    fn a_save_in_a_watched_folder_becomes_one_event() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let file = dir.path().join("lib.rs");
        std::fs::write(&file, "fn main() {}\n").expect("a first version");
        let (tx, rx) = channel();
        let _watcher = watch(dir.path(), tx).expect("watching a temporary folder");
        std::fs::write(&file, "fn main() { todo!() }\n").expect("a save");
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Event::Changed) => {}
            Ok(Event::WatchFailed(e)) => panic!("the watch failed: {e}"),
            Ok(_) => panic!("a save became another event than Changed"),
            Err(e) => panic!("no event within 10 s of a save: {e}"),
        }
        // The save's burst (write, close) is one run; the close was its end.
        if cfg!(target_os = "linux") {
            assert!(
                rx.recv_timeout(QUIET * 4).is_err(),
                "a second event for one save"
            );
            // As vim saves: the old file renamed to a backup, then a new one written.
            std::fs::rename(&file, dir.path().join("lib.rs~")).expect("a backup");
            std::fs::write(&file, "fn main() { todo!(\"2\") }\n").expect("a save");
            assert!(
                matches!(rx.recv_timeout(Duration::from_secs(10)), Ok(Event::Changed)),
                "no Changed within 10 s of a save by rename and write"
            );
            assert!(
                rx.recv_timeout(QUIET * 4).is_err(),
                "a second event for one save by rename and write"
            );
        }
    }
}
