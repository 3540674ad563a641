//! `cargo practice`: the launcher of the ETL katas. See `cargo practice --help`.

mod archive;
mod cli;
mod commands;
mod direct;
mod drill;
mod git;
mod grade;
mod kata;
mod levels;
mod libtest;
mod menu;
mod process;
mod prompt;
mod reference;
mod runner;
mod session;
mod signals;
mod start;
mod state;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::FromArgMatches;

use crate::cli::{Cli, Cmd, KataArgs};
use crate::kata::Catalog;
use crate::state::Practice;

/// What every command needs.
pub struct Ctx {
    pub repo: PathBuf,
    pub catalog: Catalog,
    pub practice: Practice,
    pub stdin_tty: bool,
    pub stdout_tty: bool,
    /// `--plain`: sessions use the line view even on a terminal.
    pub plain: bool,
}

/// The cargo that started the launcher (`cargo practice` sets `CARGO`), else `cargo`.
pub fn cargo_program() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn is_repo(dir: &Path) -> bool {
    dir.join("katas").is_dir() && dir.join("Cargo.toml").is_file()
}

/// `--repo DIR` (or `--repo=DIR`) before clap runs: the katas it holds are subcommands.
fn prescan_repo(args: &[OsString]) -> Option<PathBuf> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let s = a.to_string_lossy();
        if s == "--" {
            break;
        }
        if s == "--repo" {
            return it.next().map(PathBuf::from);
        }
        if let Some(v) = s.strip_prefix("--repo=") {
            return Some(PathBuf::from(v));
        }
    }
    None
}

fn find_repo(explicit: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        let dir = dir
            .canonicalize()
            .with_context(|| format!("--repo {}: no such directory", dir.display()))?;
        if !is_repo(&dir) {
            bail!(
                "--repo {}: not a kata repository (no katas/ folder beside a Cargo.toml)",
                dir.display()
            );
        }
        return Ok(dir);
    }
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    if let Some(dir) = cwd.ancestors().find(|d| is_repo(d)) {
        return Ok(dir.to_path_buf());
    }
    // Built inside the repository: practice/ sits beside katas/.
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if is_repo(&built_in) {
        return built_in
            .canonicalize()
            .context("cannot resolve the repository path");
    }
    bail!(
        "cannot find the kata repository from {}: run inside it, or pass --repo DIR",
        cwd.display()
    )
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{} {e:#}", console::style("error:").red().bold());
            ExitCode::from(1)
        }
    }
}

fn run() -> Result<ExitCode> {
    // Cargo runs the launcher with `cargo run`; strip the alias's `practice` if a wrapper passes it.
    let args: Vec<OsString> = std::env::args_os().collect();
    let repo = find_repo(prescan_repo(&args));
    let catalog = match &repo {
        Ok(r) => Some(Catalog::discover(r)?),
        Err(_) => None,
    };
    let matches = cli::command(catalog.as_ref()).get_matches_from(&args);
    let repo = repo?;
    let catalog = catalog.unwrap_or_default();
    let ctx = Ctx {
        practice: Practice::new(&repo),
        repo,
        catalog,
        stdin_tty: std::io::stdin().is_terminal(),
        stdout_tty: std::io::stdout().is_terminal(),
        plain: cli::plain(&matches),
    };

    if let Some((name, sub)) = matches.subcommand()
        && ctx.catalog.katas.iter().any(|k| k.name == name)
    {
        let args = KataArgs::from_arg_matches(sub)?;
        let kata = ctx.catalog.get(name)?;
        let mut p = prompt::for_terminal(ctx.stdin_tty && ctx.stdout_tty);
        return start::start(&ctx, kata, args.mode, args.steps, p.as_mut());
    }
    let cli = Cli::from_arg_matches(&matches)?;
    let done = |r: Result<()>| r.map(|()| ExitCode::SUCCESS);
    match cli.command {
        None => {
            let mut p = prompt::for_terminal(ctx.stdin_tty && ctx.stdout_tty);
            menu::run(&ctx, p.as_mut())
        }
        Some(Cmd::Status) => done(commands::status::run(&ctx)),
        Some(Cmd::History { kata, last }) => {
            done(commands::history::run(&ctx, kata.as_deref(), last))
        }
        Some(Cmd::Hint { kata, step }) => done(commands::hint::run(&ctx, &kata, &step)),
        Some(Cmd::Reset { kata, all, force }) => {
            // On a terminal, a refusal that --force would lift is offered instead.
            let mut p = prompt::for_terminal(true);
            let ask: Option<&mut dyn prompt::Prompt> = if ctx.stdin_tty && ctx.stdout_tty {
                Some(&mut *p)
            } else {
                None
            };
            done(commands::reset::run(&ctx, kata.as_deref(), all, force, ask))
        }
        Some(Cmd::Solution { kata, level, diff }) => {
            done(commands::solution::run(&ctx, &kata, &level, diff))
        }
        Some(Cmd::Grade {
            kata,
            file,
            seed,
            chaos,
            keep,
        }) => {
            let mut extra = Vec::new();
            if let Some(seed) = seed {
                extra.extend(["--seed".to_string(), seed.to_string()]);
            }
            if let Some(n) = chaos {
                extra.extend(["--chaos".to_string(), n.to_string()]);
            }
            if keep {
                extra.push("--keep".to_string());
            }
            commands::grade::run(&ctx, ctx.catalog.get(&kata)?, file.as_deref(), &extra)
        }
        Some(Cmd::Check {
            kata,
            all,
            pristine,
        }) => commands::check::run(&ctx, kata.as_deref(), all, pristine),
        Some(Cmd::Drill { kata, .. }) => {
            let mut p = prompt::for_terminal(ctx.stdin_tty && ctx.stdout_tty);
            commands::drill::run(&ctx, kata.as_deref(), p.as_mut())
        }
        Some(Cmd::Resume { .. }) => start::resume_command(&ctx),
        Some(Cmd::Guide) => {
            commands::guide::run(&ctx.catalog.katas);
            Ok(ExitCode::SUCCESS)
        }
    }
}
