//! The whole-program grader: builds a learner's single-file program (the blank program
//! of timed and interview mode, or any file) and grades it end to end on fresh data,
//! with a verdict that is a checklist mapped to the seed's steps.
//!
//! - [`batch`]: fresh dirty CSVs from the generator with a random seed; the program's
//!   Parquet output against the reference's, values exact.
//! - [`stream`]: fresh events (late, malformed) on a new multi-partition topic; the
//!   output topic's windows and the dead letters against the reference semantics.
//! - [`lake`]: fresh events (invalid, malformed); the lake row by row, the dead letters,
//!   a restart, and with `--chaos N` SIGKILLs at random moments.
//!
//! The Kafka katas use the broker every Kafka test uses (`kafka_testkit`: the mock
//! cluster by default, `KAFKA_BOOTSTRAP_SERVERS` when set).

use std::path::PathBuf;
use std::time::Duration;

pub mod batch;
pub mod lake;
pub mod program;
pub mod stream;
pub mod verdict;

pub use program::{Build, Program};
pub use verdict::{Check, Status, Verdict};

/// The three katas, by the launcher's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kata {
    /// CSV → Parquet (`batch_kata`)
    Batch,
    /// Kafka → Kafka (`kafka_stream_kata`)
    Kafka,
    /// Kafka → Parquet (`kafka_parquet_kata`)
    Parquet,
}

impl Kata {
    pub const ALL: [Kata; 3] = [Kata::Batch, Kata::Kafka, Kata::Parquet];

    /// The launcher's name: `batch`, `kafka`, `parquet`.
    pub fn name(self) -> &'static str {
        match self {
            Kata::Batch => "batch",
            Kata::Kafka => "kafka",
            Kata::Parquet => "parquet",
        }
    }

    /// The kata's folder under `katas/`.
    pub fn kata_crate(self) -> &'static str {
        match self {
            Kata::Batch => "batch_kata",
            Kata::Kafka => "kafka_stream_kata",
            Kata::Parquet => "kafka_parquet_kata",
        }
    }

    /// The blank program's crate (`katas/<kata>/program`).
    pub fn program_crate(self) -> &'static str {
        match self {
            Kata::Batch => "batch_program",
            Kata::Kafka => "kafka_stream_program",
            Kata::Parquet => "kafka_parquet_program",
        }
    }

    /// The binary that builds any file in the blank program's crate.
    pub fn graded_bin(self) -> String {
        format!("{}_graded", self.kata_crate().trim_end_matches("_kata"))
    }

    /// The blank program, relative to the repository.
    pub fn program_file(self) -> PathBuf {
        PathBuf::from(format!("katas/{}/program/src/main.rs", self.kata_crate()))
    }

    /// The solution program of a level (`beginner`, `intermediate`, `expert`), relative
    /// to the repository.
    pub fn level_file(self, level: &str) -> PathBuf {
        PathBuf::from(format!(
            "solutions/levels/src/bin/{}_{level}.rs",
            self.kata_crate().trim_end_matches("_kata")
        ))
    }
}

/// How one grading run is made.
#[derive(Debug, Clone)]
pub struct Options {
    /// The seed of the fresh data (random unless given, printed in the verdict).
    pub seed: u64,
    /// Parquet kata: SIGKILL the program at this many random moments, restart it, and
    /// check exactly-once (needs a real broker).
    pub chaos: u32,
    /// The longest one run of the program may take before it counts as hung.
    pub run_deadline: Duration,
    /// Keep the fresh data and outputs (their folder is printed) instead of deleting them.
    pub keep: bool,
}

impl Options {
    pub fn new(seed: u64) -> Options {
        Options {
            seed,
            chaos: 0,
            run_deadline: Duration::from_secs(60),
            keep: false,
        }
    }
}

/// A seed from the clock and the process id: fresh data every run.
pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish() % 1_000_000_000
}

/// Grades a built program. An `Err` means the grading itself could not run (no
/// broker, a full disk), never that the program is wrong: that is the verdict's job.
pub async fn grade(kata: Kata, program: &Program, options: &Options) -> anyhow::Result<Verdict> {
    match kata {
        Kata::Batch => batch::grade(program, options).await,
        Kata::Kafka => stream::grade(program, options).await,
        Kata::Parquet => lake::grade(program, options).await,
    }
}

/// The verdict for a program that could not be built or was refused: the first
/// check fails with rustc's first error, the rest are not run.
pub fn verdict_without_program(kata: Kata, build: &Build) -> Option<Verdict> {
    let mut verdict = Verdict::new(kata.name());
    match build {
        Build::Program(_) => return None,
        Build::Refused(why) => verdict.push(Check::fail("compiles", "refused").with_detail(why)),
        Build::DoesNotCompile(error) => {
            let first = error.lines().next().unwrap_or("error").to_string();
            verdict.push(Check::fail("compiles", first).with_detail(error.clone()));
        }
    }
    Some(verdict)
}

/// Builds `file` (or the kata's blank program) and grades it: the whole of
/// `cargo practice grade <kata> [--file PATH]`.
pub async fn grade_file(
    kata: Kata,
    file: Option<&std::path::Path>,
    options: &Options,
    progress: bool,
) -> anyhow::Result<Verdict> {
    let build = tokio::task::block_in_place(|| program::build(kata, file, progress))?;
    if let Some(verdict) = verdict_without_program(kata, &build) {
        return Ok(verdict);
    }
    let Build::Program(program) = build else {
        unreachable!("handled above")
    };
    if progress {
        eprintln!(
            "grader: built; grading on fresh data (seed {})",
            options.seed
        );
    }
    let mut verdict = grade(kata, &program, options).await?;
    verdict.checks.insert(
        0,
        Check::pass("compiles", program.source.display().to_string()),
    );
    Ok(verdict)
}
