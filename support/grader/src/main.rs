//! `grader <kata> [--file PATH]`: what `cargo practice grade` runs. Prints the verdict;
//! exits 0 when every check passed, 1 when one failed, 2 when grading could not run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use grader::{Kata, Options, Program};

#[derive(Parser)]
#[command(about = "Grade a whole kata program on fresh data")]
struct Args {
    /// The kata.
    #[arg(value_enum)]
    kata: Kata,
    /// A single-file program to grade, built with the blank program's dependencies
    /// (default: the kata's blank program, katas/<kata>/program/src/main.rs).
    #[arg(long, conflicts_with = "program")]
    file: Option<PathBuf>,
    /// An already built program to grade as it is (e.g. a reference binary).
    #[arg(long)]
    program: Option<PathBuf>,
    /// The seed of the fresh data (default: random; the verdict prints it).
    #[arg(long)]
    seed: Option<u64>,
    /// Parquet kata: kill the program with SIGKILL at N random moments, restart it,
    /// and check that the lake still holds every valid event exactly once.
    #[arg(long, default_value_t = 0)]
    chaos: u32,
    /// Seconds one run of the program may take before it counts as hung.
    #[arg(long, default_value_t = 60)]
    deadline_s: u64,
    /// Keep the fresh data and the outputs, and print where they are.
    #[arg(long)]
    keep: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut options = Options::new(args.seed.unwrap_or_else(grader::random_seed));
    options.chaos = args.chaos;
    options.run_deadline = std::time::Duration::from_secs(args.deadline_s);
    options.keep = args.keep;
    let verdict = match &args.program {
        Some(binary) => match Program::from_binary(binary) {
            Ok(program) => grader::grade(args.kata, &program, &options).await,
            Err(e) => Err(e),
        },
        None => grader::grade_file(args.kata, args.file.as_deref(), &options, true).await,
    };
    match verdict {
        Ok(verdict) => {
            println!("{verdict}");
            if verdict.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => {
            eprintln!("grader: could not grade: {error:#}");
            ExitCode::from(2)
        }
    }
}
