//! File events: the practice file's folder is watched, and a save (of new content)
//! becomes an event for the session.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::time::Duration;

use anyhow::{Context, Result};
use notify_debouncer_mini::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{DebounceEventResult, Debouncer, new_debouncer};

use super::Event;

/// Saves closer together than this are one. It is also the wait between a save and its
/// run (up to twice this, as the debouncer batches): an editor's save is a burst of
/// events within a few milliseconds, and a run stopped by a later save restarts.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// Watches `dir` for changes to `.rs` files for as long as the returned value lives.
pub fn watch(dir: &Path, tx: Sender<Event>) -> Result<Debouncer<RecommendedWatcher>> {
    let mut d = new_debouncer(DEBOUNCE, move |res: DebounceEventResult| {
        let ev = match res {
            Ok(events)
                if events
                    .iter()
                    .any(|e| e.path.extension().is_some_and(|x| x == "rs")) =>
            {
                Event::Changed
            }
            Ok(_) => return,
            Err(e) => Event::WatchFailed(e.to_string()),
        };
        let _ = tx.send(ev);
    })
    .context("cannot start watching the kata's files")?;
    d.watcher()
        .watch(dir, RecursiveMode::Recursive)
        .with_context(|| format!("cannot watch {}", dir.display()))?;
    Ok(d)
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
            } else if p.extension().is_some_and(|x| x == "rs") {
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
