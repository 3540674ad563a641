//! The expert level of each kata: the reference binaries (`solutions/src/bin/*`, the
//! production pipelines) graded by the whole-program grader like any candidate's
//! program, on fresh data with a random seed, so the references cannot rot.
//!
//! Each test builds its binary with `cargo build -p solutions --bin <name>` (the dev
//! profile, the shared target directory), then grades it as it is
//! (`Program::from_binary`). The gradings take turns (a lock file): the Kafka ones
//! wait on idle timeouts, and on two cores three at once would measure contention.

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use grader::{Kata, Options, Program};

/// A cold build of the solutions compiles rdkafka and links DataFusion: minutes, not hours.
const BUILD_DEADLINE: Duration = Duration::from_secs(20 * 60);

#[tokio::test(flavor = "multi_thread")]
async fn batch_etl_passes() {
    grade_reference(Kata::Batch, "batch_etl").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_stream_passes() {
    grade_reference(Kata::Kafka, "kafka_stream").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_to_parquet_passes() {
    grade_reference(Kata::Parquet, "kafka_to_parquet").await;
}

/// Builds the reference binary `bin` and grades it for `kata`, printing the verdict.
async fn grade_reference(kata: Kata, bin: &str) {
    let _turn = tokio::task::block_in_place(take_turn);
    let binary = tokio::task::block_in_place(|| build(bin));
    let program = Program::from_binary(&binary)
        .unwrap_or_else(|e| panic!("cannot grade {}: {e:#}", binary.display()));
    let options = Options::new(grader::random_seed());
    eprintln!(
        "grading {bin} ({}), seed {}",
        binary.display(),
        options.seed
    );
    let started = Instant::now();
    let verdict = grader::grade(kata, &program, &options)
        .await
        .unwrap_or_else(|e| panic!("grading {bin} could not run: {e:#}"));
    eprintln!(
        "{verdict}\n({bin} graded in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    common::assert_passed(&verdict);
}

/// Waits for the other tests of this file to finish grading; the turn ends when the
/// returned file is dropped.
fn take_turn() -> File {
    let path = std::env::temp_dir().join("grader-expert-tests.lock");
    let file = File::create(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    file.lock()
        .unwrap_or_else(|e| panic!("locking {}: {e}", path.display()));
    file
}

/// `cargo build -p solutions --bin <bin>` in the repository, stopped at
/// [`BUILD_DEADLINE`]; returns the executable cargo reports.
fn build(bin: &str) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = Command::new(cargo)
        .current_dir(common::repo())
        .args([
            "build",
            "--message-format=json",
            "-p",
            "solutions",
            "--bin",
            bin,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start cargo: {e}"));
    // Read both pipes while cargo runs, so that a full pipe never blocks it.
    let stdout = child.stdout.take().expect("piped");
    let name = bin.to_string();
    let executable = std::thread::spawn(move || {
        let mut executable = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if message["reason"] == "compiler-artifact"
                && message["target"]["name"] == name.as_str()
                && let Some(path) = message["executable"].as_str()
            {
                executable = Some(PathBuf::from(path));
            }
        }
        executable
    });
    let mut stderr = child.stderr.take().expect("piped");
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < BUILD_DEADLINE => {
                std::thread::sleep(Duration::from_millis(200))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "cargo build -p solutions --bin {bin} did not finish within {} s",
                    BUILD_DEADLINE.as_secs()
                );
            }
            Err(e) => panic!("waiting for cargo: {e}"),
        }
    };
    let executable = executable.join().expect("the stdout reader");
    let stderr = stderr.join().expect("the stderr reader");
    assert!(
        status.success(),
        "cargo build -p solutions --bin {bin} failed ({status}):\n{}",
        grader::program::tail(&stderr, 30)
    );
    executable.unwrap_or_else(|| panic!("cargo built no executable for --bin {bin}"))
}
