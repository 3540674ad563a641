//! A private Apache Kafka for one test, started with `scripts/kafka-local` on free
//! ports, for the tests that kill or restart the broker (the shared broker of
//! [`crate::broker`] must never be stopped: other tests use it).
//!
//! ```ignore
//! let broker = kafka_testkit::local_broker::LocalBroker::start()?; // ~10-20 s
//! run_pipeline(broker.bootstrap());
//! broker.restart_kill()?; // SIGKILL, then the same data on the same port
//! drop(broker);           // `scripts/kafka-local down`: stopped, data deleted
//! ```
//!
//! When the test panics, the broker's log (every start of it, restarts included) is
//! copied out before `down` deletes the data, and its path is printed.
//!
//! Needs what `scripts/kafka-local` needs (Java 17+, and Maven once to fetch the
//! jars; CI fetches them before the tests). It does not choose whether to run: a
//! test that needs it is marked `#[cfg_attr(not(real_broker), ignore = …)]`, and
//! when the script cannot start a broker the test fails with the script's output.
//! The calls block (the script waits for the broker): from async code, call them in
//! `tokio::task::spawn_blocking`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

/// The JVM heap of a private broker unless `KAFKA_HEAP_OPTS` says otherwise: tests
/// run several processes on small machines.
pub const DEFAULT_HEAP_OPTS: &str = "-Xms128m -Xmx512m";

/// A broker started by [`LocalBroker::start`], stopped and deleted when dropped.
#[derive(Debug)]
pub struct LocalBroker {
    port: u16,
    controller_port: u16,
    bootstrap: String,
    /// The script's folder for this broker (`KAFKA_LOCAL_RUN_DIR`): config, data, log.
    run_dir: PathBuf,
}

impl LocalBroker {
    /// Starts a broker (KRaft, one node) on two free ports of 127.0.0.1 and waits
    /// until it answers (the script's own deadline, 60 s by default).
    pub fn start() -> anyhow::Result<LocalBroker> {
        let (port, controller_port) = free_port_pair()?;
        let broker = LocalBroker {
            port,
            controller_port,
            bootstrap: format!("127.0.0.1:{port}"),
            run_dir: std::env::temp_dir().join(format!("kafka-testkit-{port}")),
        };
        eprintln!(
            "kafka_testkit: starting a private Apache Kafka on {} (scripts/kafka-local up --port {port})",
            broker.bootstrap
        );
        // Dropped on failure: `down` removes whatever a failed start left.
        broker.script("up")?;
        Ok(broker)
    }

    /// `bootstrap.servers` of this broker.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Kills the broker with SIGKILL, as a crash would, and starts it again on the
    /// same port and data (topics, records, committed offsets and groups kept);
    /// returns once it answers again.
    pub fn restart_kill(&self) -> anyhow::Result<()> {
        eprintln!(
            "kafka_testkit: killing the private Apache Kafka on {} (SIGKILL) and restarting it",
            self.bootstrap
        );
        self.script_with("restart", &["--kill"])
    }

    fn script(&self, command: &str) -> anyhow::Result<()> {
        self.script_with(command, &[])
    }

    fn script_with(&self, command: &str, extra: &[&str]) -> anyhow::Result<()> {
        let script = script_path();
        let started = Instant::now();
        let mut cmd = Command::new(&script);
        cmd.arg(command)
            .args(extra)
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--controller-port")
            .arg(self.controller_port.to_string())
            .env("KAFKA_LOCAL_RUN_DIR", &self.run_dir)
            .stdin(Stdio::null());
        if std::env::var_os("KAFKA_HEAP_OPTS").is_none() {
            cmd.env("KAFKA_HEAP_OPTS", DEFAULT_HEAP_OPTS);
        }
        let output = cmd
            .output()
            .with_context(|| format!("running {}", script.display()))?;
        if !output.status.success() {
            bail!(
                "`scripts/kafka-local {command}{} --port {}` failed ({}) after {:.1} s:\n{}{}",
                extra.iter().map(|e| format!(" {e}")).collect::<String>(),
                self.port,
                output.status,
                started.elapsed().as_secs_f64(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        eprintln!(
            "kafka_testkit: `scripts/kafka-local {command}` on port {} took {:.1} s",
            self.port,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}

impl Drop for LocalBroker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            keep_log(&self.run_dir);
        }
        if let Err(e) = self.script("down") {
            eprintln!("kafka_testkit: stopping the private broker: {e:#}");
        }
    }
}

/// Copies the broker log out of `run_dir` (which `down` deletes) beside it, and says where.
fn keep_log(run_dir: &Path) {
    let log = run_dir.join("server.log");
    let kept = run_dir.with_extension("server.log");
    match std::fs::copy(&log, &kept) {
        Ok(_) => eprintln!(
            "kafka_testkit: the private broker's log is kept at {}",
            kept.display()
        ),
        Err(e) => eprintln!(
            "kafka_testkit: could not keep the private broker's log {}: {e}",
            log.display()
        ),
    }
}

/// `scripts/kafka-local` of this checkout.
fn script_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kafka-local")
}

/// Two distinct ports the system calls free right now (listener and controller).
fn free_port_pair() -> anyhow::Result<(u16, u16)> {
    let a = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    let b = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok((
        a.local_addr().context("reading a bound port")?.port(),
        b.local_addr().context("reading a bound port")?.port(),
    ))
}
