//! Reference mode: runs the kata's `[[reference.run]]` commands (the reference pipeline
//! with its logs, the producer when a broker is configured, a preview of the output),
//! showing their output as it comes.
//!
//! The programs are built first, in a phase of their own: `cargo build` of each
//! `cargo run` command, with cargo's progress shown and no run's time limit (a first
//! release build of DataFusion takes many minutes on two cores). Each run's
//! `timeout_s` then bounds the program alone.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use console::style;

use crate::Ctx;
use crate::grade::Vars;
use crate::kata::{Kata, OutputFormat, RefCommand, When};
use crate::process::{self, Cancel, Output};
use crate::signals;
use crate::state;

pub fn run(ctx: &Ctx, kata: &Kata) -> Result<ExitCode> {
    if kata.reference.run.is_empty() {
        bail!(
            "kata `{}` has no reference commands: add `[[reference.run]]` entries to {}/kata.toml",
            kata.name,
            kata.rel_dir()
        );
    }
    signals::install()?;
    let scratch =
        ctx.practice
            .runs_dir()
            .join(format!("{}-reference-{}", kata.name, state::stamp()));
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    // The programs started here cannot share a test container: a broker named by
    // KAFKA_BOOTSTRAP_SERVERS, else each starts its own mock cluster (`{broker}`).
    let choice = kafka_choice::choose_for_programs()?;
    let vars = Vars::new(&ctx.repo, &scratch, kata);
    let has_broker = choice.kind == kafka_choice::BrokerKind::Env;
    println!(
        "{} — {} · reference mode",
        style(&kata.name).bold(),
        kata.title
    );
    if kata.needs_kafka {
        println!("Broker: {}", choice.describe());
    }
    let wanted: Vec<&RefCommand> = kata
        .reference
        .run
        .iter()
        .filter(|r| match r.when {
            When::Always => true,
            When::Broker => has_broker,
            When::Mock => !has_broker,
        })
        .collect();
    let start = Instant::now();
    let builds = build_commands(&wanted);
    if !builds.is_empty() {
        println!(
            "\n{} Building the programs first, with no time limit (the first time compiles \
             DataFusion in release mode: 15 minutes or more on two cores, once; then seconds)",
            style("▶").cyan()
        );
    }
    for argv in &builds {
        println!("  $ {}", vars.describe(argv));
        let f = process::run(
            vars.command(&ctx.repo, argv),
            BUILD_LIMIT,
            &Cancel::default(),
            Output::Inherit,
        )?;
        if f.cancelled {
            println!("\nStopped (Ctrl-C).");
            return Ok(ExitCode::from(130));
        }
        if !f.success() {
            bail!(
                "`{}` failed: the reference programs could not be built",
                vars.describe(argv)
            );
        }
    }
    if !builds.is_empty() {
        println!("  built in {:.0} s", start.elapsed().as_secs_f64());
    }
    for r in wanted {
        let cmd = vars.command(&ctx.repo, &r.cmd);
        println!(
            "\n{} {}\n  $ {}",
            style("▶").cyan(),
            r.title,
            vars.describe(&r.cmd)
        );
        let shaped = r.preview_rows.is_some() || r.output == OutputFormat::Csv;
        let how = if shaped {
            Output::CaptureStdout
        } else {
            Output::Inherit
        };
        let f = process::run(
            cmd,
            Duration::from_secs(r.timeout_s),
            &Cancel::default(),
            how,
        )?;
        if f.cancelled {
            println!("\nStopped (Ctrl-C).");
            return Ok(ExitCode::from(130));
        }
        if f.timed_out {
            bail!(
                "`{}` gave no result within {} s and was stopped",
                r.title,
                r.timeout_s
            );
        }
        if shaped && f.success() {
            print!("{}", shape(&f.stdout, r.output, r.preview_rows)?);
        }
        if !f.success() {
            bail!(
                "`{}` failed ({})",
                r.title,
                f.status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "killed".into())
            );
        }
    }
    println!(
        "\n{} Reference run finished in {:.1} s (scratch files: {}).",
        style("✓").green(),
        start.elapsed().as_secs_f64(),
        scratch
            .strip_prefix(&ctx.repo)
            .unwrap_or(&scratch)
            .display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Bound on building the reference programs: generous, as a cold release build of
/// DataFusion on two cores takes many minutes (Ctrl-C stops it at any time).
const BUILD_LIMIT: Duration = Duration::from_secs(3 * 60 * 60);

/// `cargo build` for each `cargo run` command, in order and without repeats: its
/// arguments before `--`, `run` replaced by `build`, `-q`/`--quiet` dropped so that
/// cargo's progress shows.
fn build_commands(runs: &[&RefCommand]) -> Vec<Vec<String>> {
    let mut builds: Vec<Vec<String>> = Vec::new();
    for r in runs {
        let Some((program, args)) = r.cmd.split_first() else {
            continue;
        };
        if program != "cargo" || args.first().map(String::as_str) != Some("run") {
            continue;
        }
        let mut build = vec![program.clone(), "build".to_string()];
        build.extend(
            args[1..]
                .iter()
                .take_while(|a| *a != "--")
                .filter(|a| !matches!(a.as_str(), "-q" | "--quiet"))
                .cloned(),
        );
        if !builds.contains(&build) {
            builds.push(build);
        }
    }
    builds
}

/// The command's output as shown: CSV as an aligned table, cut to `rows` lines.
fn shape(stdout: &str, format: OutputFormat, rows: Option<usize>) -> Result<String> {
    let limit = rows.unwrap_or(usize::MAX);
    let mut out = String::new();
    match format {
        OutputFormat::Text => {
            let lines: Vec<&str> = stdout.lines().collect();
            for l in lines.iter().take(limit) {
                out.push_str(l);
                out.push('\n');
            }
            if lines.len() > limit {
                out.push_str(&format!("… {} more lines\n", lines.len() - limit));
            }
        }
        OutputFormat::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(stdout.as_bytes());
            let mut table: Vec<Vec<String>> = Vec::new();
            let mut total = 0usize;
            for rec in reader.records() {
                let rec = rec.context("the command's output is not valid CSV")?;
                total += 1;
                // The header plus `limit` rows.
                if table.len() <= limit {
                    table.push(rec.iter().map(str::to_string).collect());
                }
            }
            let cols = table.iter().map(Vec::len).max().unwrap_or(0);
            let widths: Vec<usize> = (0..cols)
                .map(|c| {
                    table
                        .iter()
                        .filter_map(|r| r.get(c))
                        .map(|v| v.chars().count())
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |r: &Vec<String>| {
                let cells: Vec<String> = (0..cols)
                    .map(|c| {
                        format!(
                            "{:<w$}",
                            r.get(c).map(String::as_str).unwrap_or(""),
                            w = widths[c]
                        )
                    })
                    .collect();
                format!("| {} |", cells.join(" | "))
            };
            let rule = format!(
                "+{}+",
                widths
                    .iter()
                    .map(|w| "-".repeat(w + 2))
                    .collect::<Vec<_>>()
                    .join("+")
            );
            out.push_str(&rule);
            out.push('\n');
            for (i, r) in table.iter().enumerate() {
                out.push_str(&line(r));
                out.push('\n');
                if i == 0 {
                    out.push_str(&rule);
                    out.push('\n');
                }
            }
            out.push_str(&rule);
            out.push('\n');
            let rows_total = total.saturating_sub(1);
            let shown = table.len().saturating_sub(1);
            if rows_total > shown {
                out.push_str(&format!("{shown} of {rows_total} rows shown\n"));
            } else {
                out.push_str(&format!("{rows_total} rows\n"));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(cmd: &str) -> RefCommand {
        RefCommand {
            title: "t".into(),
            cmd: cmd.split(' ').map(str::to_string).collect(),
            when: When::Always,
            timeout_s: 900,
            preview_rows: None,
            output: OutputFormat::Text,
        }
    }

    #[test]
    fn each_cargo_run_is_built_once_first_with_cargo_progress() {
        let runs = [
            command("cargo run -q --release -p solutions --bin batch_etl -- --output {scratch}/a"),
            command(
                "cargo run --quiet -p batch_kata --features cli,reference --bin batch_pipeline -- -x",
            ),
            command("cargo run -q --release -p solutions --bin batch_etl -- --output {scratch}/b"),
            command("scripts/kafka-local up"),
        ];
        let refs: Vec<&RefCommand> = runs.iter().collect();
        let builds: Vec<String> = build_commands(&refs).iter().map(|b| b.join(" ")).collect();
        assert_eq!(
            builds,
            [
                "cargo build --release -p solutions --bin batch_etl",
                "cargo build -p batch_kata --features cli,reference --bin batch_pipeline",
            ]
        );
    }

    #[test]
    fn csv_output_becomes_an_aligned_table_cut_to_the_preview() {
        let csv = "customer_id,name,total_sales\n1,\"Smith, Jo\",10.50\n22,Al,3.00\n3,Bo,1.00\n";
        assert_eq!(
            shape(csv, OutputFormat::Csv, Some(2)).unwrap(),
            "+-------------+-----------+-------------+\n\
             | customer_id | name      | total_sales |\n\
             +-------------+-----------+-------------+\n\
             | 1           | Smith, Jo | 10.50       |\n\
             | 22          | Al        | 3.00        |\n\
             +-------------+-----------+-------------+\n\
             2 of 3 rows shown\n"
        );
        assert_eq!(
            shape("a\nb\nc\n", OutputFormat::Text, Some(2)).unwrap(),
            "a\nb\n… 1 more lines\n"
        );
    }
}
