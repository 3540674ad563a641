//! Grading of the lake kata's whole program.

use crate::{Options, Program, Verdict};

pub async fn grade(program: &Program, options: &Options) -> anyhow::Result<Verdict> {
    let _ = (program, options);
    anyhow::bail!("grading this kata is being written")
}
