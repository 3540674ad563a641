//! `cargo practice guide`: the learning path (from the kata list), the practice
//! strategy, the levels (from each kata's times) and interview tips, in Rust terms.
//! They follow the PySpark practice system this programme comes from.

use std::fmt::Write as _;

use crate::kata::Kata;
use crate::levels::Thresholds;
use crate::state::clock;

/// One kata a week, in the menu's order (kata.toml's `order`), each with its pipeline
/// and its timed target.
pub fn learning_path(katas: &[Kata]) -> String {
    let mut out = String::from("Learning path (one kata a week, in the order of the menu)\n");
    if katas.is_empty() {
        out.push_str("  (no katas/*/kata.toml found)\n");
        return out;
    }
    let width = katas.iter().map(|k| k.name.len()).max().unwrap_or(0).max(8);
    let pad = " ".repeat(width + 11);
    for (i, k) in katas.iter().enumerate() {
        // The kata's difficulty is left out here: its words (Beginner, Intermediate, …)
        // are also the learner's levels and read as one.
        let _ = writeln!(out, "  Week {:<2} {:<width$} {}", i + 1, k.name, k.title);
        if let Some(summary) = &k.summary {
            let _ = writeln!(out, "{pad}{summary}");
        }
        let _ = writeln!(
            out,
            "{pad}guided steps first; target: the whole program from a blank file in {} (expert {})",
            clock(k.target_s()),
            clock(k.expert_s())
        );
    }
    // The PySpark programme's figure, 6-8 weeks for three pipelines, per pipeline.
    let n = katas.len();
    let all = if n == 1 {
        "the kata".to_string()
    } else {
        format!("all {n} pipelines")
    };
    let _ = writeln!(
        out,
        "  Result: interview-ready on {all} ({}-{} weeks with daily practice).",
        2 * n,
        (8 * n).div_ceil(3)
    );
    out
}

pub const STRATEGY: &str = "\
Practice strategy, for each kata
  Days 1-2  guided, with hints          Days 3-4  guided, without hints
  Days 5-7  timed: build speed          Week 2    timed to beat the target, then interview
  Week 3    interview daily: complete under the target, clean, explainable
";

/// The levels, with each kata's own times (from its kata.toml).
pub fn levels(katas: &[Kata]) -> String {
    let mut out = String::from(
        "Levels (per kata; above Beginner only the whole program counts: the blank file of\n\
         timed or interview mode, passed without hints)\n",
    );
    let names: Vec<&str> = katas.iter().map(|k| k.name.as_str()).collect();
    let times = |f: fn(&Thresholds) -> f64| {
        katas
            .iter()
            .map(|k| clock(f(&Thresholds::of(k))))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let _ = writeln!(
        out,
        "  Beginner         completes once, hints allowed, either file"
    );
    if katas.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "  Intermediate     within the interview limit   {}  ({})",
        times(|t| t.intermediate_s),
        names.join(" / ")
    );
    let _ = writeln!(
        out,
        "  Advanced         within the timed target      {}",
        times(|t| t.advanced_s)
    );
    let _ = writeln!(
        out,
        "  Expert           under the expert time        {}",
        times(|t| t.expert_s)
    );
    let _ = writeln!(
        out,
        "  Interview Ready  three interview-mode attempts in a row passed within {}",
        times(|t| t.ready_s)
    );
    out
}

pub const TIPS: &str = "\
Interview tips
   1. Start with the imports: `use datafusion::prelude::*;` (and rdkafka's config,
      consumer and producer traits) before anything else.
   2. Create the SessionContext (or the Kafka client config) early: the standard opening.
   3. Read with explicit options: CsvReadOptions with has_header and a schema, not guesses.
   4. Clean before you join: fewer rows through the join, and nulls dealt with once.
   5. Use meaningful aliases: `sum(col(\"amount\")).alias(\"total_sales\")`.
   6. Handle errors: `?` with anyhow's `.context(\"reading orders.csv\")`, no unwrap on input.
   7. Log what an operator needs: `eprintln!(\"{rows} rows written to {dir}\")` in an
      interview (the blank program has no tracing); `tracing::info!` in production code.
   8. Test incrementally: `df.clone().show().await?`, run your program on fixtures/, and
      grade as often as you like (g): only the clock counts.
   9. Clean up: flush the producer, commit offsets, finish the Parquet writer.
  10. Practise explaining: say what each step does and why while you type.
";

/// The whole guide.
pub fn all(katas: &[Kata]) -> String {
    format!(
        "{}\n{STRATEGY}\n{}\n{TIPS}",
        learning_path(katas),
        levels(katas)
    )
}

/// `cargo practice guide`.
pub fn run(katas: &[Kata]) {
    println!("{}", all(katas));
}
