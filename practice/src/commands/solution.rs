//! `cargo practice solution <kata> [--level L] [--diff]`.

use anyhow::{Context, Result, bail};

use crate::Ctx;
use crate::kata::Kata;
use crate::state::{History, PracticeFile};

/// `cargo practice solution <kata> [--level L]`: a reference source, once an attempt
/// has ended. A kata with `[levels]` in its kata.toml has one per level; the others
/// have their `solution` files.
pub fn run(ctx: &Ctx, kata: &str, level: &str, diff: bool) -> Result<()> {
    let k = ctx.catalog.get(kata)?;
    if let Some(a) = ctx.practice.load_current()?
        && a.kata == k.name
    {
        bail!(
            "an attempt on `{}` is in progress ({}): finish or abandon it first, then the solution is yours",
            k.name,
            a.mode.as_str()
        );
    }
    let h = ctx.practice.load_history()?;
    if !h.attempts.iter().any(|e| e.kata == k.name) {
        bail!(
            "the solution of `{}` opens after your first attempt at it ends (finished or abandoned): try first, \
             `cargo practice {}`",
            k.name,
            k.name
        );
    }
    let files = if k.levels.is_empty() {
        &k.solution
    } else {
        k.levels.get(level).with_context(|| {
            format!(
                "`{}` has the levels {}, not `{level}`",
                k.name,
                k.levels.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })?
    };
    if files.is_empty() {
        bail!(
            "{}/kata.toml lists no reference file (`solution = \"solutions/src/….rs\"`)",
            k.rel_dir()
        );
    }
    if diff {
        return solution_diff(ctx, k, &h, files);
    }
    for f in files {
        let path = ctx.repo.join(f);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the reference file {}", path.display()))?;
        println!("// ===== {f} =====\n{text}");
    }
    Ok(())
}

/// The solution as a diff against the learner's last archived attempt: their whole
/// program after a whole-program attempt, their step file after a step-file one.
fn solution_diff(ctx: &Ctx, k: &Kata, h: &History, files: &[String]) -> Result<()> {
    let Some(last) = h
        .attempts
        .iter()
        .rev()
        .find(|e| e.kata == k.name && e.archive.is_some())
    else {
        bail!("no archived attempt at `{}` to compare with", k.name);
    };
    let archive = ctx.repo.join(last.archive.as_deref().unwrap_or_default());
    let mine = match (&k.program, last.file) {
        (Some(p), PracticeFile::Program) => archive.join(&p.file),
        _ => archive.join("src/lib.rs"),
    };
    if !mine.is_file() {
        bail!(
            "your last attempt ({} {}, {}) left no {} in its archive",
            last.mode.as_str(),
            last.file.as_str(),
            last.started_at,
            mine.display()
        );
    }
    println!(
        "--- your last attempt: {} ({} mode, {})\n+++ the solution",
        mine.strip_prefix(&ctx.repo).unwrap_or(&mine).display(),
        last.mode.as_str(),
        last.result.as_str()
    );
    for f in files {
        // Both files open with comments (the problem statement, the solution's notes):
        // the diff is about the code.
        let dir = ctx.practice.runs_dir().join("diff");
        let (a, b) = (dir.join("yours.rs"), dir.join("solution.rs"));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        for (from, to) in [(&mine, &a), (&ctx.repo.join(f), &b)] {
            let text = std::fs::read_to_string(from)
                .with_context(|| format!("cannot read {}", from.display()))?;
            std::fs::write(to, without_leading_comments(&text))
                .with_context(|| format!("cannot write {}", to.display()))?;
        }
        let patch = crate::git::diff_files(&ctx.repo, &a, &b)?;
        // The copies' paths mean nothing to the learner: the header above names both.
        let patch: String = patch
            .lines()
            .filter(|l| {
                !(l.starts_with("diff --git ")
                    || l.starts_with("index ")
                    || l.starts_with("--- ")
                    || l.starts_with("+++ "))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        if patch.is_empty() {
            println!("{f}: the same as yours");
        } else {
            print!("{patch}");
        }
    }
    Ok(())
}

/// `text` without the comment lines (and blank lines) it starts with.
fn without_leading_comments(text: &str) -> String {
    let mut lines = text.lines().peekable();
    while lines
        .peek()
        .is_some_and(|l| l.trim().is_empty() || l.trim_start().starts_with("//"))
    {
        lines.next();
    }
    lines.map(|l| format!("{l}\n")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_statement_at_the_top_is_left_out_of_the_diff() {
        let text = "//! # The task\n//!\n// notes\n\nuse std::io;\n// kept\nfn main() {}\n";
        assert_eq!(
            super::without_leading_comments(text),
            "use std::io;\n// kept\nfn main() {}\n"
        );
    }
}
