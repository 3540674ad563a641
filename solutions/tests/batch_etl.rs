//! The `batch_etl` binary end to end: correct on data it has never seen (checked
//! against a plain-Rust model of Spark's semantics), and safe on bad input.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Output};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Int64Type};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use fixtures::batch::{self, BatchOptions};

fn batch_etl(customers: &Path, orders: &Path, output: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_batch_etl"))
        .args(["--customers", customers.to_str().unwrap()])
        .args(["--orders", orders.to_str().unwrap()])
        .args(["--output", output.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .output()
        .expect("batch_etl runs")
}

type Row = Vec<Option<String>>;

/// Spark's `dropDuplicates().dropna()` on CSV rows, without DataFusion.
fn read_clean(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let mut seen = HashSet::new();
    let mut rows = Vec::new();
    for record in reader.records() {
        let row: Row = record
            .unwrap()
            .iter()
            .map(|f| (!f.is_empty()).then(|| f.to_string()))
            .collect();
        if seen.insert(row.clone()) && row.iter().all(Option::is_some) {
            rows.push(row.into_iter().map(Option::unwrap).collect());
        }
    }
    rows
}

fn cents(amount: &str) -> i128 {
    let (units, fraction) = amount.split_once('.').unwrap();
    units.parse::<i128>().unwrap() * 100 + fraction.parse::<i128>().unwrap()
}

/// (customer_id, name, city) -> (total cents, order count).
type Summary = BTreeMap<(String, Option<String>, Option<String>), (i128, i64)>;

/// The summary by a left join then a group by, over plain Rust collections.
fn expected_summary(dir: &Path) -> Summary {
    let mut customers: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for c in read_clean(&dir.join(batch::CUSTOMERS_FILE)) {
        customers
            .entry(c[0].clone())
            .or_default()
            .push((c[1].clone(), c[3].clone()));
    }
    let mut summary = BTreeMap::new();
    for o in read_clean(&dir.join(batch::ORDERS_FILE)) {
        let matches: Vec<(Option<String>, Option<String>)> = match customers.get(&o[1]) {
            Some(found) => found
                .iter()
                .map(|(n, c)| (Some(n.clone()), Some(c.clone())))
                .collect(),
            None => vec![(None, None)],
        };
        for (name, city) in matches {
            let entry = summary.entry((o[1].clone(), name, city)).or_insert((0, 0));
            entry.0 += cents(&o[4]);
            entry.1 += 1;
        }
    }
    summary
}

async fn actual_summary(
    output: &Path,
) -> BTreeMap<(String, Option<String>, Option<String>), (i128, i64)> {
    let batches: Vec<RecordBatch> = SessionContext::new()
        .read_parquet(
            format!("{}/", output.display()),
            ParquetReadOptions::default(),
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut summary = BTreeMap::new();
    for b in &batches {
        // Parquet strings may come back as Utf8View; compare them as plain strings.
        let strings = |name: &str| cast(b.column_by_name(name).unwrap(), &DataType::Utf8).unwrap();
        let (ids, names, cities) = (strings("customer_id"), strings("name"), strings("city"));
        let text = |column: &ArrayRef, i: usize| {
            let column = column.as_string::<i32>();
            column.is_valid(i).then(|| column.value(i).to_string())
        };
        let total = b
            .column_by_name("total_sales")
            .unwrap()
            .as_primitive::<Decimal128Type>();
        let count = b
            .column_by_name("order_count")
            .unwrap()
            .as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            let key = (text(&ids, i).unwrap(), text(&names, i), text(&cities, i));
            assert!(
                summary
                    .insert(key, (total.value(i), count.value(i)))
                    .is_none(),
                "one row per group"
            );
        }
    }
    summary
}

#[tokio::test]
async fn matches_a_model_of_spark_semantics_on_unseen_data() {
    for seed in [3, 1_000_003, 77_777] {
        let dir = tempfile::tempdir().unwrap();
        let options = BatchOptions {
            customers: 300,
            orders: 3000,
            seed,
            dirty: true,
        };
        let counts = batch::generate(&options, dir.path()).unwrap();
        let output = dir.path().join("summary");
        let run = batch_etl(
            &dir.path().join("customers.csv"),
            &dir.path().join("orders.csv"),
            &output,
        );
        assert!(
            run.status.success(),
            "batch_etl failed: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let read = format!(
            "{} customers, {} orders read",
            counts.customer_rows, counts.order_rows
        );
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(
            stdout.contains(&read),
            "seed {seed}: expected {read:?} in {stdout:?}"
        );
        let (expected, actual) = (expected_summary(dir.path()), actual_summary(&output).await);
        assert_eq!(
            actual.len(),
            expected.len(),
            "seed {seed}: number of summary rows"
        );
        assert_eq!(
            actual, expected,
            "seed {seed}: summary differs from the model"
        );
    }
}

#[test]
fn a_bad_value_names_file_line_and_column_and_keeps_the_old_output() {
    a_bad_value_is_located(csv::Terminator::Any(b'\n'));
}

/// The fixtures generator's files end their lines with `\r\n`, where the csv crate's own
/// line count is one short.
#[test]
fn a_bad_value_in_a_file_with_crlf_line_ends_names_its_line() {
    a_bad_value_is_located(csv::Terminator::CRLF);
}

/// Corrupts the amount on line 42 of orders.csv, written with line ends `terminator`.
fn a_bad_value_is_located(terminator: csv::Terminator) {
    let dir = tempfile::tempdir().unwrap();
    batch::generate(
        &BatchOptions {
            customers: 20,
            orders: 100,
            seed: 5,
            dirty: false,
        },
        dir.path(),
    )
    .unwrap();
    let (customers, orders) = (
        dir.path().join("customers.csv"),
        dir.path().join("orders.csv"),
    );
    let output = dir.path().join("summary");
    assert!(batch_etl(&customers, &orders, &output).status.success());
    let before = std::fs::read_dir(&output).unwrap().count();

    // Line 1 is the header; corrupt the amount on line 42 (record 41).
    let mut records: Vec<csv::StringRecord> = csv::Reader::from_path(&orders)
        .unwrap()
        .records()
        .map(Result::unwrap)
        .collect();
    let mut bad: Vec<String> = records[40].iter().map(str::to_string).collect();
    bad[4] = "abc".to_string();
    records[40] = csv::StringRecord::from(bad);
    let mut writer = csv::WriterBuilder::new()
        .terminator(terminator)
        .from_path(&orders)
        .unwrap();
    writer.write_record(batch::ORDERS_HEADER).unwrap();
    for record in &records {
        writer.write_record(record).unwrap();
    }
    writer.flush().unwrap();

    let run = batch_etl(&customers, &orders, &output);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "a bad value must fail the run");
    for needle in ["orders.csv", "line 42", "column amount", "\"abc\""] {
        assert!(
            stderr.contains(needle),
            "the error should mention {needle}: {stderr}"
        );
    }
    assert_eq!(
        std::fs::read_dir(&output).unwrap().count(),
        before,
        "previous output untouched"
    );
    let siblings: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        siblings.len(),
        3,
        "no staging directories left behind: {siblings:?}"
    );
}

#[test]
fn a_missing_input_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let run = batch_etl(
        &dir.path().join("nope.csv"),
        &dir.path().join("orders.csv"),
        &dir.path().join("out"),
    );
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("nope.csv"));
}
