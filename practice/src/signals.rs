//! Ctrl-C (and SIGTERM, SIGHUP) during a session: instead of dying mid-write, the
//! launcher notices the signal on its next tick, stops the test run, saves the attempt
//! and says how to resume.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Catches the signals from now on; call once, when a session or a reference run starts.
pub fn install() -> anyhow::Result<()> {
    let flag = FLAG
        .get_or_init(|| Arc::new(AtomicBool::new(false)))
        .clone();
    #[cfg(unix)]
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, flag.clone())
            .map_err(|e| anyhow::anyhow!("cannot catch signal {sig}: {e}"))?;
    }
    #[cfg(not(unix))]
    let _ = flag;
    Ok(())
}

pub fn pending() -> bool {
    FLAG.get().is_some_and(|f| f.load(Ordering::SeqCst))
}
