//! Starting a mode: reference runs at once; the other modes resume the attempt in
//! progress or start a new one from the pristine kata.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::Ctx;
use crate::archive;
use crate::git;
use crate::kata::Kata;
use crate::prompt::{Item, Prompt};
use crate::session;
use crate::state::{Attempt, AttemptResult, Mode, PracticeFile, clock};

/// The file an attempt is written in: the whole program in interview mode, and in
/// timed mode unless `steps` asks for the step file; the step file in guided mode and
/// for a kata without a whole program.
pub fn practice_file(kata: &Kata, mode: Mode, steps: bool) -> PracticeFile {
    match mode {
        _ if kata.program.is_none() => PracticeFile::Steps,
        Mode::Interview => PracticeFile::Program,
        Mode::Timed if !steps => PracticeFile::Program,
        _ => PracticeFile::Steps,
    }
}

pub fn start(
    ctx: &Ctx,
    kata: &Kata,
    mode: Mode,
    steps: bool,
    p: &mut dyn Prompt,
) -> Result<ExitCode> {
    if mode == Mode::Reference {
        return crate::reference::run(ctx, kata);
    }
    let file = practice_file(kata, mode, steps);
    if let Some(code) = settle_current(ctx, kata, mode, file, p)? {
        return Ok(code);
    }
    new_attempt(ctx, kata, mode, file, p)
}

/// An attempt in progress is resumed (`Some`: the session's exit), abandoned or kept
/// paused (`Some`: nothing to start); `None`: go on and start the new one.
pub fn settle_current(
    ctx: &Ctx,
    kata: &Kata,
    mode: Mode,
    file: PracticeFile,
    p: &mut dyn Prompt,
) -> Result<Option<ExitCode>> {
    if let Some(a) = ctx.practice.load_current()? {
        refuse_if_live(&a)?;
        let other = ctx.catalog.get(&a.kata)?;
        let what = describe(&a);
        let items = if a.kata == kata.name && a.mode == mode && a.file == file {
            vec![
                Item::new("resume", format!("Resume it ({what})")),
                Item::new(
                    "abandon",
                    "Abandon it (archive, record, restore the kata) and start anew",
                ),
                Item::new("cancel", "Cancel"),
            ]
        } else {
            vec![
                Item::new("resume", format!("Resume it ({what}) instead")),
                Item::new(
                    "abandon",
                    format!(
                        "Abandon it (archive, record, restore {}) and start {} {}",
                        other.rel_dir(),
                        kata.name,
                        mode.as_str()
                    ),
                ),
                Item::new("cancel", "Cancel"),
            ]
        };
        match p.select(&format!("An attempt is in progress: {what}."), &items)? {
            Some(0) => return resume_attempt(ctx, a).map(Some),
            Some(1) => {
                let ended = archive::end_attempt(
                    ctx,
                    other,
                    &a,
                    AttemptResult::Abandoned,
                    a.elapsed_s,
                    false,
                )?;
                report_end(&ended, other);
            }
            _ => {
                println!("Nothing started; the attempt stays paused.");
                return Ok(Some(ExitCode::SUCCESS));
            }
        }
    }
    Ok(None)
}

fn describe(a: &Attempt) -> String {
    format!(
        "{} · {} · {} · {}",
        a.kata,
        a.mode.as_str(),
        a.file.as_str(),
        clock(a.elapsed_s)
    )
}

fn refuse_if_live(a: &Attempt) -> Result<()> {
    if let Some(pid) = a.pid
        && crate::process::is_alive(pid)
    {
        bail!(
            "the {} attempt on `{}` is running in another terminal (process {pid}); go on there, or pause it (p) first",
            a.mode.as_str(),
            a.kata
        );
    }
    Ok(())
}

fn report_end(ended: &archive::Ended, kata: &Kata) {
    let dir = ended.entry.archive.as_deref().unwrap_or("?");
    match &ended.restored {
        Ok(()) => println!(
            "Abandoned: archived in {dir}; {} is pristine again.",
            kata.rel_dir()
        ),
        Err(why) => println!(
            "Abandoned: archived in {dir}; {} was NOT restored: {why}",
            kata.rel_dir()
        ),
    }
}

fn new_attempt(
    ctx: &Ctx,
    kata: &Kata,
    mode: Mode,
    file: PracticeFile,
    p: &mut dyn Prompt,
) -> Result<ExitCode> {
    if !ready_kata(ctx, kata, mode, p)? {
        return Ok(ExitCode::SUCCESS);
    }
    if file == PracticeFile::Program {
        prepare_program(ctx, kata)?;
    }
    session::run(ctx, kata, Attempt::new(&kata.name, mode, file))
}

/// Changes made to the kata outside an attempt are archived first (or, in guided mode,
/// kept if the learner says so); `false`: the learner cancelled, nothing was started.
pub fn ready_kata(ctx: &Ctx, kata: &Kata, mode: Mode, p: &mut dyn Prompt) -> Result<bool> {
    match git::not_a_checkout(&ctx.repo) {
        Some(why) => println!(
            "Note: {why}; at the end the attempt is archived but the kata cannot be restored from git."
        ),
        None => {
            let changes = git::changes_in(&ctx.repo, &kata.rel_dir())?;
            if !changes.is_empty() {
                let files: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
                println!(
                    "{} has changes made outside an attempt: {}",
                    kata.rel_dir(),
                    files.join(", ")
                );
                let mut items = vec![Item::new(
                    "fresh",
                    "Archive them and start from the pristine kata",
                )];
                if mode == Mode::Guided {
                    items.push(Item::new("keep", "Keep them and go on from there"));
                }
                items.push(Item::new("cancel", "Cancel"));
                let choice = p.select("How do you want to start?", &items)?;
                match choice.map(|i| items[i].key.as_str()) {
                    Some("fresh") => {
                        if let Some(why) = archive::refusal(&ctx.repo) {
                            bail!(
                                "cannot start from the pristine kata: {}",
                                why.explain(Some(&kata.name))
                            );
                        }
                        let dir = archive::archive(ctx, kata, "edit", None)?;
                        git::restore(&ctx.repo, &kata.rel_dir())?;
                        println!("Archived in {dir}; {} is pristine.", kata.rel_dir());
                    }
                    Some("keep") => {}
                    _ => {
                        println!("Nothing started.");
                        return Ok(false);
                    }
                }
            }
        }
    }
    Ok(true)
}

pub fn resume_attempt(ctx: &Ctx, a: Attempt) -> Result<ExitCode> {
    refuse_if_live(&a)?;
    let kata = ctx.catalog.get(&a.kata)?;
    if a.file == PracticeFile::Program {
        prepare_program(ctx, kata)?;
    }
    session::run(ctx, kata, a)
}

/// The kata's `[program] prepare` command, before the clock starts: the first build of
/// the grader compiles DataFusion and rdkafka (minutes on two cores), which must not
/// count against an interview's limit. Its output is shown; it has no time limit
/// (Ctrl-C stops it, and nothing has started).
fn prepare_program(ctx: &Ctx, kata: &Kata) -> Result<()> {
    let Some(prepare) = kata.program.as_ref().map(|p| &p.prepare) else {
        return Ok(());
    };
    if prepare.is_empty() {
        return Ok(());
    }
    println!(
        "Before the clock starts: building the grader and your program's crate (the first time \
         compiles DataFusion and rdkafka, a few minutes; then it takes a second)…"
    );
    let vars = crate::grade::Vars::new(&ctx.repo, &std::env::temp_dir(), kata);
    // In the launcher's process group: Ctrl-C stops both.
    let mut cmd = vars.command(&ctx.repo, prepare);
    let what = crate::process::describe(&cmd);
    let status = cmd
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run `{what}`: {e}"))?;
    if !status.success() {
        bail!("`{what}` failed: the grader cannot be built, so nothing was started");
    }
    Ok(())
}

/// `cargo practice resume`.
pub fn resume_command(ctx: &Ctx) -> Result<ExitCode> {
    match ctx.practice.load_current()? {
        Some(a) => resume_attempt(ctx, a),
        None => {
            println!(
                "No attempt in progress. Start one with `cargo practice <kata>` or the menu (`cargo practice`)."
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
