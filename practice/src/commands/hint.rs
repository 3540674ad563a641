//! `cargo practice hint <kata> <step>`.

use anyhow::{Result, bail};

use crate::Ctx;
use crate::session::view::hint_text;
use crate::state::Mode;

/// `cargo practice hint <kata> <step>`: counted when a guided attempt on that kata is in
/// progress, refused during a timed or interview attempt.
pub fn run(ctx: &Ctx, kata: &str, step: &str) -> Result<()> {
    let k = ctx.catalog.get(kata)?;
    let i = k.find_step(step)?;
    let mut note = String::new();
    if let Some(mut a) = ctx.practice.load_current()?
        && a.kata == k.name
    {
        if a.mode != Mode::Guided {
            bail!(
                "no hints during a {} attempt: hints are for guided mode (abandon it, or finish it first)",
                a.mode.as_str()
            );
        }
        a.note_hint(i + 1);
        ctx.practice.save_current(&a)?;
        note = format!("(hints used this attempt: {})\n", a.hints.len());
    }
    print!("{}{note}", hint_text(k, i));
    Ok(())
}
