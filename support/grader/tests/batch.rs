//! The batch grader on whole programs: the solution levels pass, the pristine blank
//! program fails, and each deliberately wrong program (the intermediate solution with
//! one mistake) fails with the checklist line that names the mistake, under its step.
//!
//! `cargo test -p grader --test batch`: each test builds one program (builds are
//! serialised, each a few seconds once DataFusion is built) and grades it on fresh data
//! with a random seed, printed with the verdict.

mod common;

use common::{assert_fails_with, assert_passed, grade_level, grade_mutant, grade_pristine};
use grader::{Kata, Status};

#[tokio::test(flavor = "multi_thread")]
async fn intermediate_passes() {
    assert_passed(&grade_level(Kata::Batch, "intermediate").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn beginner_passes() {
    assert_passed(&grade_level(Kata::Batch, "beginner").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn pristine_blank_program_fails() {
    let verdict = grade_pristine(Kata::Batch).await;
    assert_fails_with(&verdict, "runs", "wrote no Parquet file");
    assert!(
        verdict
            .checks
            .iter()
            .skip(2)
            .all(|c| c.status == Status::Skip),
        "nothing is judged without an output:\n{verdict}"
    );
}

/// Step 3, the classic: `dropDuplicates()` forgotten (on both files).
#[tokio::test(flavor = "multi_thread")]
async fn no_dedup_keeps_duplicate_orders() {
    let verdict = grade_mutant(Kata::Batch, "?.distinct()?)", "?)").await;
    assert_fails_with(&verdict, "clean", "duplicate orders kept");
    assert_fails_with(&verdict, "clean", "duplicate customer rows kept");
    assert_eq!(
        verdict.check("join").map(|c| c.status),
        Some(Status::Pass),
        "the join is right:\n{verdict}"
    );
}

/// Step 3: `dropna()` forgotten.
#[tokio::test(flavor = "multi_thread")]
async fn no_dropna_keeps_rows_with_nulls() {
    let verdict = grade_mutant(Kata::Batch, "no_nulls.unwrap_or(lit(true))", "lit(true)").await;
    assert_fails_with(&verdict, "clean", "orders with an empty field kept");
    assert_fails_with(&verdict, "clean", "customers with an empty field kept");
}

/// Step 4: an inner join loses the orders of unknown customers.
#[tokio::test(flavor = "multi_thread")]
async fn inner_join_instead_of_left() {
    let verdict = grade_mutant(Kata::Batch, "JoinType::Left", "JoinType::Inner").await;
    assert_fails_with(&verdict, "join", "(an inner join)");
    assert_eq!(
        verdict.check("clean").map(|c| c.status),
        Some(Status::Pass),
        "cleaning is right:\n{verdict}"
    );
    assert_eq!(
        verdict.check("aggregate").map(|c| c.status),
        Some(Status::Pass),
        "the other customers' values are right:\n{verdict}"
    );
}

/// Step 5: counting a customers' column counts no order for an unknown customer.
#[tokio::test(flavor = "multi_thread")]
async fn order_count_of_a_customers_column() {
    let verdict = grade_mutant(
        Kata::Batch,
        r#"count(col("order_id"))"#,
        r#"count(col("c_id"))"#,
    )
    .await;
    assert_fails_with(&verdict, "aggregate", "order_count differs for");
    assert_fails_with(&verdict, "aggregate", "ids without a clean customer record");
}

/// Step 5: an average through a float is rounded where the decimal one is exact.
#[tokio::test(flavor = "multi_thread")]
async fn average_through_a_float() {
    let verdict = grade_mutant(
        Kata::Batch,
        r#"avg(col("amount"))"#,
        r#"avg(cast(col("amount"), Float64))"#,
    )
    .await;
    assert_fails_with(&verdict, "aggregate", "avg_order_value differs for");
    assert_fails_with(&verdict, "schema", "avg_order_value is Float64");
}

/// Step 5: `now()` without the cast is a wall-clock time, not a UTC instant.
#[tokio::test(flavor = "multi_thread")]
async fn processed_at_without_a_time_zone() {
    let verdict = grade_mutant(Kata::Batch, "cast(now(), utc)", "now()").await;
    assert_fails_with(&verdict, "processed_at", "no time zone");
    assert_fails_with(&verdict, "schema", "processed_at is Timestamp(ns)");
}

/// Step 1: without the codec option, DataFusion writes zstd.
#[tokio::test(flavor = "multi_thread")]
async fn parquet_not_snappy() {
    let verdict = grade_mutant(
        Kata::Batch,
        "\n        .set_str(\"datafusion.execution.parquet.compression\", \"snappy\");",
        ";",
    )
    .await;
    assert_fails_with(&verdict, "session", "ZSTD");
}

/// Step 2: without the check, a missing file reads as an empty table.
#[tokio::test(flavor = "multi_thread")]
async fn missing_file_not_an_error() {
    let verdict = grade_mutant(
        Kata::Batch,
        "    ensure!(path.is_file(), \"input file not found: {}\", path.display());\n",
        "",
    )
    .await;
    assert_fails_with(
        &verdict,
        "read",
        "missing customers file was read as an empty table",
    );
}

/// Step 6: writing into the output folder leaves the earlier run's files.
#[tokio::test(flavor = "multi_thread")]
async fn output_not_overwritten() {
    let verdict = grade_mutant(
        Kata::Batch,
        "write_parquet(summary, &args.output).await",
        "summary.write_parquet(&format!(\"{}/\", args.output.display()), \
         DataFrameWriteOptions::new(), None).await?; Ok(())",
    )
    .await;
    assert_fails_with(
        &verdict,
        "write",
        "part-0-from-last-run.parquet is still in the output",
    );
}

/// Step 6: deleting the output before writing loses it when the run fails.
#[tokio::test(flavor = "multi_thread")]
async fn overwrite_not_atomic() {
    let verdict = grade_mutant(
        Kata::Batch,
        "write_parquet(summary, &args.output).await",
        "let _ = std::fs::remove_dir_all(&args.output); \
         summary.write_parquet(&format!(\"{}/\", args.output.display()), \
         DataFrameWriteOptions::new(), None).await?; Ok(())",
    )
    .await;
    assert_fails_with(
        &verdict,
        "write",
        "a failed run (the malformed amount) deleted the output",
    );
}
