//! The seed's learning path, practice strategy, levels and interview tips, in Rust terms.

use std::fmt::Write as _;

use crate::kata::Kata;
use crate::levels::Thresholds;
use crate::state::clock;

pub const LEARNING_PATH: &str = "\
Learning path
  Week 1  batch    Batch ETL (CSV -> clean -> join -> aggregate -> Parquet)
                   fundamentals with guided steps; target: the whole pipeline in 15 minutes
  Week 2  kafka    Kafka streaming (Kafka -> window aggregates -> Kafka)
                   real-time processing: event time, late data, tumbling windows; target 20 minutes
  Week 3  parquet  Data lake ingestion (Kafka -> partitioned Parquet with checkpoints)
                   partitioning, data quality filters, fault tolerance; target 25 minutes
  Result: interview-ready on all three patterns (6-8 weeks with daily practice).

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
   7. Log what an operator needs: `tracing::info!(rows, \"wrote customer summary\")`.
   8. Test incrementally: `df.clone().show().await?`, or run one step's test.
   9. Clean up: flush the producer, commit offsets, finish the Parquet writer.
  10. Practise explaining: say what each step does and why while you type.
";

pub fn all(katas: &[Kata]) -> String {
    format!("{LEARNING_PATH}\n{}\n{TIPS}", levels(katas))
}
