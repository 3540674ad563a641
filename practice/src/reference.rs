//! Reference mode: runs the kata's `[[reference.run]]` commands (the reference pipeline
//! with its logs, the producer when a broker is configured, a preview of the output),
//! showing their output as it comes.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use console::style;

use crate::Ctx;
use crate::grade::{Vars, broker};
use crate::kata::{Kata, When};
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
    let vars = Vars::new(&ctx.repo, &scratch, kata);
    let has_broker = broker().is_some();
    println!(
        "{} — {} · reference mode",
        style(&kata.name).bold(),
        kata.title
    );
    if kata.needs_kafka {
        println!(
            "Broker: {}",
            if has_broker {
                format!("KAFKA_BOOTSTRAP_SERVERS={}", vars.get("broker"))
            } else {
                "none set: librdkafka's embedded mock cluster, filled with demo events \
                 (set KAFKA_BOOTSTRAP_SERVERS, or `scripts/kafka-local up`, for a real broker)"
                    .to_string()
            }
        );
    }
    let start = Instant::now();
    for r in &kata.reference.run {
        let wanted = match r.when {
            When::Always => true,
            When::Broker => has_broker,
            When::Mock => !has_broker,
        };
        if !wanted {
            continue;
        }
        let cmd = vars.command(&ctx.repo, &r.cmd);
        println!(
            "\n{} {}\n  $ {}",
            style("▶").cyan(),
            r.title,
            process::describe(&cmd)
        );
        let f = process::run(
            cmd,
            Duration::from_secs(r.timeout_s),
            &Cancel::default(),
            Output::Inherit,
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
