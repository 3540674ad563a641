//! The batch kata's step tests: `cargo test -p batch_kata` (your steps) or
//! `cargo test -p batch_kata --features reference` (the reference solution).
//!
//! Each step test builds its own input, so any step can pass before the others.
//! On failure they print the expected and the actual table (`kata_testkit`), and an
//! error in its Display form.

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use crate::graded as kata;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::csv::ReaderBuilder;
use datafusion::arrow::datatypes::{
    DataType, Field, Schema, SchemaRef, TimeUnit, TimestampNanosecondType,
};
use datafusion::prelude::*;
use fixtures::batch::{customers_schema, orders_schema};
use kata_testkit::{
    OkOrPanic, assert_columns, assert_schema, assert_sorted_table, table as pretty,
};

/// A session for building test inputs: not the one step 1 makes, so that the other
/// steps are graded on their own, writing Parquet with Snappy as the job does.
fn test_session() -> SessionContext {
    SessionContext::new_with_config(
        SessionConfig::new()
            .with_target_partitions(2)
            .set_str("datafusion.execution.parquet.compression", "snappy"),
    )
}

/// A DataFrame from CSV text (header line, empty field = null) with the given schema.
fn table(ctx: &SessionContext, schema: SchemaRef, csv: &str) -> DataFrame {
    let reader = ReaderBuilder::new(schema)
        .with_header(true)
        .build(Cursor::new(csv.to_string()))
        .ok_or_panic("test CSV is valid");
    let batches: Vec<RecordBatch> = reader
        .collect::<Result<_, _>>()
        .ok_or_panic("test CSV parses");
    ctx.read_batches(batches).ok_or_panic("in-memory table")
}

fn joined_schema() -> SchemaRef {
    let orders = orders_schema();
    let customers = customers_schema();
    let fields: Vec<Field> = orders
        .fields()
        .iter()
        .chain(customers.fields().iter().skip(1))
        .map(|f| f.as_ref().clone())
        .collect();
    Arc::new(Schema::new(fields))
}

/// The names and types of the first `n` columns (all of them if fewer).
fn first_columns(df: &DataFrame, n: usize) -> Schema {
    let fields: Vec<Field> = df
        .schema()
        .fields()
        .iter()
        .take(n)
        .map(|f| f.as_ref().clone())
        .collect();
    Schema::new(fields)
}

/// Collects a DataFrame, failing with the error's message.
async fn rows(df: DataFrame, what: &str) -> Vec<RecordBatch> {
    df.collect().await.ok_or_panic(what)
}

#[test]
fn step_01_create_session() {
    let ctx = kata::create_session();
    let config = ctx.copied_config();
    let options = config.options();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(
        options.execution.target_partitions, cores,
        "target_partitions should be the number of available cores"
    );
    assert!(
        options.optimizer.repartition_joins,
        "joins should be repartitioned"
    );
    assert!(
        options.optimizer.repartition_aggregations,
        "aggregations should be repartitioned"
    );
    assert!(
        options.execution.collect_statistics,
        "statistics should be collected"
    );
    assert_eq!(
        options.execution.parquet.compression.as_deref(),
        Some("snappy"),
        "Parquet compression should be snappy"
    );
}

#[tokio::test]
async fn step_02_read_sources() {
    let dir = tempfile::tempdir().ok_or_panic("a temporary folder");
    let customers = dir.path().join("customers.csv");
    let orders = dir.path().join("orders.csv");
    std::fs::write(
        &customers,
        "customer_id,name,email,city,signup_date\r\n\
         C000001,\"Smith, Jr.\",smith@example.com,Paris,2021-03-04\r\n\
         C000002,\"Ann \"\"Annie\"\" Lee\",,\"Washington, D.C.\",2022-12-31\r\n\
         C000003,Bo,bo@example.com,Lagos,\r\n",
    )
    .ok_or_panic("writing customers.csv");
    std::fs::write(
        &orders,
        "order_id,customer_id,product,quantity,amount,order_date,status\r\n\
         O0000001,C000001,Laptop,2,1799.98,2024-01-15,completed\r\n\
         O0000002,C000002,Mouse,1,,2024-02-29,pending\r\n\
         O0000003,,\"Notebook, A5\",3,13.50,2024-12-31,shipped\r\n\
         O0000004,C000003,Cable,,9.99,2024-06-01,\r\n",
    )
    .ok_or_panic("writing orders.csv");

    let ctx = test_session();
    let (customers, orders) =
        kata::read_sources(&ctx, customers.to_str().unwrap(), orders.to_str().unwrap())
            .await
            .ok_or_panic("read_sources");

    // Types as declared; every column nullable (an empty field is null).
    assert_schema(
        "customers schema",
        &customers_schema(),
        customers.schema().as_arrow(),
    );
    assert_schema(
        "orders schema",
        &orders_schema(),
        orders.schema().as_arrow(),
    );

    assert_sorted_table(
        "customers",
        &[
            "+-------------+-----------------+-------------------+------------------+-------------+",
            "| customer_id | name            | email             | city             | signup_date |",
            "+-------------+-----------------+-------------------+------------------+-------------+",
            "| C000001     | Smith, Jr.      | smith@example.com | Paris            | 2021-03-04  |",
            "| C000002     | Ann \"Annie\" Lee |                   | Washington, D.C. | 2022-12-31  |",
            "| C000003     | Bo              | bo@example.com    | Lagos            |             |",
            "+-------------+-----------------+-------------------+------------------+-------------+",
        ],
        &rows(customers.clone(), "reading customers").await,
    );
    assert_sorted_table(
        "orders",
        &[
            "+----------+-------------+--------------+----------+---------+------------+-----------+",
            "| order_id | customer_id | product      | quantity | amount  | order_date | status    |",
            "+----------+-------------+--------------+----------+---------+------------+-----------+",
            "| O0000001 | C000001     | Laptop       | 2        | 1799.98 | 2024-01-15 | completed |",
            "| O0000002 | C000002     | Mouse        | 1        |         | 2024-02-29 | pending   |",
            "| O0000003 |             | Notebook, A5 | 3        | 13.50   | 2024-12-31 | shipped   |",
            "| O0000004 | C000003     | Cable        |          | 9.99    | 2024-06-01 |           |",
            "+----------+-------------+--------------+----------+---------+------------+-----------+",
        ],
        &rows(orders.clone(), "reading orders").await,
    );
    let missing = dir.path().join("missing.csv");
    let result = kata::read_sources(
        &ctx,
        missing.to_str().unwrap(),
        dir.path().join("orders.csv").to_str().unwrap(),
    )
    .await;
    match result {
        Ok(_) => panic!("reading a missing file should be an error"),
        Err(error) => assert!(
            error.to_string().contains("missing.csv"),
            "the error should name the file: {error}"
        ),
    }

    // Empty fields are nulls, not empty strings.
    let nulls = customers
        .filter(col("email").is_null())
        .ok_or_panic("filtering on email")
        .count()
        .await
        .ok_or_panic("counting null emails");
    assert_eq!(nulls, 1, "an empty email should read as null");
    let nulls = orders
        .filter(col("status").is_null())
        .ok_or_panic("filtering on status")
        .count()
        .await
        .ok_or_panic("counting null statuses");
    assert_eq!(nulls, 1, "an empty status should read as null");
}

#[tokio::test]
async fn step_03_clean() {
    let ctx = test_session();
    // Any schema: clean() is applied to customers and to orders alike.
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("qty", DataType::Int32, true),
        Field::new("day", DataType::Date32, true),
    ]));
    let input = table(
        &ctx,
        schema,
        "id,qty,day\n\
         a,1,2024-01-01\n\
         a,1,2024-01-01\n\
         a,1,2024-01-01\n\
         a,2,2024-01-01\n\
         b,,2024-01-02\n\
         b,,2024-01-02\n\
         ,3,2024-01-03\n\
         c,3,\n\
         d,4,2024-01-04\n",
    );
    let cleaned = kata::clean(input).ok_or_panic("clean");
    assert_columns(
        "same columns, same order",
        &[
            ("id", DataType::Utf8),
            ("qty", DataType::Int32),
            ("day", DataType::Date32),
        ],
        cleaned.schema().as_arrow(),
    );
    assert_sorted_table(
        "cleaned rows",
        &[
            "+----+-----+------------+",
            "| id | qty | day        |",
            "+----+-----+------------+",
            "| a  | 1   | 2024-01-01 |",
            "| a  | 2   | 2024-01-01 |",
            "| d  | 4   | 2024-01-04 |",
            "+----+-----+------------+",
        ],
        &rows(cleaned, "executing clean").await,
    );
}

#[tokio::test]
async fn step_04_join() {
    let ctx = test_session();
    let orders = table(
        &ctx,
        orders_schema(),
        "order_id,customer_id,product,quantity,amount,order_date,status\n\
         O1,C1,Laptop,1,899.99,2024-01-01,completed\n\
         O2,C1,Mouse,2,49.98,2024-01-02,shipped\n\
         O3,C2,Phone,1,599.50,2024-01-03,pending\n\
         O4,C9,Cable,3,29.97,2024-01-04,completed\n",
    );
    let customers = table(
        &ctx,
        customers_schema(),
        "customer_id,name,email,city,signup_date\n\
         C1,Ana Silva,ana@example.com,Lisbon,2021-05-06\n\
         C2,Wei Chen,wei@example.com,Tokyo,2022-07-08\n\
         C3,No Orders,none@example.com,Oslo,2023-09-10\n",
    );
    let joined = kata::join_customers(orders, customers).ok_or_panic("join_customers");
    // Nullability left out: a left join may make the customer columns nullable or not.
    let joined_schema = joined_schema();
    let expected: Vec<(&str, DataType)> = joined_schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type().clone()))
        .collect();
    assert_columns(
        "customer_id once, orders' columns then customers'",
        &expected,
        joined.schema().as_arrow(),
    );
    assert_sorted_table(
        "joined rows",
        &[
            "+----------+-------------+---------+----------+--------+------------+-----------+-----------+-----------------+--------+-------------+",
            "| order_id | customer_id | product | quantity | amount | order_date | status    | name      | email           | city   | signup_date |",
            "+----------+-------------+---------+----------+--------+------------+-----------+-----------+-----------------+--------+-------------+",
            "| O1       | C1          | Laptop  | 1        | 899.99 | 2024-01-01 | completed | Ana Silva | ana@example.com | Lisbon | 2021-05-06  |",
            "| O2       | C1          | Mouse   | 2        | 49.98  | 2024-01-02 | shipped   | Ana Silva | ana@example.com | Lisbon | 2021-05-06  |",
            "| O3       | C2          | Phone   | 1        | 599.50 | 2024-01-03 | pending   | Wei Chen  | wei@example.com | Tokyo  | 2022-07-08  |",
            "| O4       | C9          | Cable   | 3        | 29.97  | 2024-01-04 | completed |           |                 |        |             |",
            "+----------+-------------+---------+----------+--------+------------+-----------+-----------+-----------------+--------+-------------+",
        ],
        &rows(joined, "executing the join").await,
    );
}

#[tokio::test]
async fn step_05_aggregate() {
    let before = now_nanos();
    let ctx = test_session();
    let joined = table(
        &ctx,
        joined_schema(),
        "order_id,customer_id,product,quantity,amount,order_date,status,name,email,city,signup_date\n\
         O1,C1,Laptop,1,899.99,2024-01-01,completed,Ana Silva,ana@example.com,Lisbon,2021-05-06\n\
         O2,C1,Mouse,2,49.98,2024-01-02,shipped,Ana Silva,ana@example.com,Lisbon,2021-05-06\n\
         O5,C1,Cable,1,0.03,2024-01-05,returned,Ana Silva,ana@example.com,Lisbon,2021-05-06\n\
         O3,C2,Phone,1,599.50,2024-01-03,pending,Wei Chen,wei@example.com,Tokyo,2022-07-08\n\
         O4,C9,Cable,3,29.97,2024-01-04,completed,,,,\n\
         O6,C9,Cable,1,9.99,2024-01-06,completed,,,,\n",
    );
    let summary = kata::summarize(joined).ok_or_panic("summarize");
    // processed_at last; its type is checked below (any spelling of UTC).
    assert_columns(
        "output columns",
        &fixtures::batch::summary_columns()[..6],
        &first_columns(&summary, 6),
    );
    let names: Vec<&str> = summary
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert!(
        names.len() == 7 && names[6] == "processed_at",
        "processed_at should be the seventh and last column: {}",
        names.join(", ")
    );
    let batches = rows(summary, "executing summarize").await;
    let after = now_nanos();

    let without_time: Vec<RecordBatch> = batches
        .iter()
        .map(|b| b.project(&[0, 1, 2, 3, 4, 5]).ok_or_panic("projection"))
        .collect();
    assert_sorted_table(
        "totals per customer (processed_at left out)",
        &[
            "+-------------+-----------+--------+-------------+-------------+-----------------+",
            "| customer_id | name      | city   | total_sales | order_count | avg_order_value |",
            "+-------------+-----------+--------+-------------+-------------+-----------------+",
            "| C1          | Ana Silva | Lisbon | 950.00      | 3           | 316.666666      |",
            "| C2          | Wei Chen  | Tokyo  | 599.50      | 1           | 599.500000      |",
            "| C9          |           |        | 39.96       | 2           | 19.980000       |",
            "+-------------+-----------+--------+-------------+-------------+-----------------+",
        ],
        &without_time,
    );
    let times = processed_at_nanos(&batches);
    assert_eq!(times.len(), 3, "processed_at on every row, never null");
    assert!(
        times.iter().all(|t| *t == times[0]),
        "one processed_at for the whole run, got {times:?}"
    );
    assert!(
        (before..=after).contains(&times[0]),
        "processed_at should be the time the query ran: {} not in [{before}, {after}]",
        times[0]
    );
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok_or_panic("the clock is before 1970")
        .as_nanos() as i64
}

/// processed_at of every row in nanoseconds since the epoch; checks it is a UTC timestamp.
fn processed_at_nanos(batches: &[RecordBatch]) -> Vec<i64> {
    let mut out = Vec::new();
    for batch in batches {
        let column = batch
            .column_by_name("processed_at")
            .expect("processed_at column");
        match column.data_type() {
            DataType::Timestamp(_, Some(tz)) if ["UTC", "+00:00", "Z"].contains(&tz.as_ref()) => {
                let as_ns = datafusion::arrow::compute::cast(
                    column,
                    &DataType::Timestamp(TimeUnit::Nanosecond, Some(tz.clone())),
                )
                .ok_or_panic("processed_at in nanoseconds");
                let values = as_ns.as_primitive::<TimestampNanosecondType>();
                assert_eq!(values.null_count(), 0, "processed_at must not be null");
                out.extend(values.values().iter().copied());
            }
            other => panic!("processed_at should be a UTC timestamp, found {other}"),
        }
    }
    out
}

/// The Parquet files directly under `dir`, read back as one table.
async fn read_back(dir: &Path) -> Vec<RecordBatch> {
    let ctx = test_session();
    let df = ctx
        .read_parquet(format!("{}/", dir.display()), ParquetReadOptions::default())
        .await
        .ok_or_panic("the output should be readable as Parquet");
    rows(df, "reading the output back").await
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .ok_or_panic(&format!("listing {}", dir.display()))
        .map(|e| {
            e.ok_or_panic("listing a folder")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn step_06_write_parquet() {
    let ctx = test_session();
    let lake = tempfile::tempdir().ok_or_panic("a temporary folder");
    let output = lake.path().join("customer_summary");
    std::fs::create_dir(&output).ok_or_panic("creating the output folder");
    std::fs::write(output.join("part-from-last-run.parquet"), b"stale")
        .ok_or_panic("writing a file of an earlier run");

    let df = table(
        &ctx,
        customers_schema(),
        "customer_id,name,email,city,signup_date\n\
         C1,Ana Silva,ana@example.com,Lisbon,2021-05-06\n\
         C2,Wei Chen,,Tokyo,2022-07-08\n\
         C3,Bo,bo@example.com,Lagos,\n",
    );
    let written = kata::write_parquet(df, &output)
        .await
        .ok_or_panic("write_parquet");
    assert_eq!(written, 3, "rows written");

    let files = entries(&output);
    assert!(
        !files.contains(&"part-from-last-run.parquet".to_string()),
        "overwrite removes earlier files: {files:?}"
    );
    assert!(
        files.iter().all(|f| f.ends_with(".parquet")),
        "only Parquet files in the output: {files:?}"
    );
    assert_eq!(
        entries(lake.path()),
        ["customer_summary"],
        "nothing left beside the output"
    );
    assert_sorted_table(
        "the output read back",
        &[
            "+-------------+-----------+-----------------+--------+-------------+",
            "| customer_id | name      | email           | city   | signup_date |",
            "+-------------+-----------+-----------------+--------+-------------+",
            "| C1          | Ana Silva | ana@example.com | Lisbon | 2021-05-06  |",
            "| C2          | Wei Chen  |                 | Tokyo  | 2022-07-08  |",
            "| C3          | Bo        | bo@example.com  | Lagos  |             |",
            "+-------------+-----------+-----------------+--------+-------------+",
        ],
        &read_back(&output).await,
    );

    // A failing write (a bad value found while executing) leaves the output as it was.
    let before: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| (f.clone(), std::fs::read(output.join(f)).ok_or_panic(f)))
        .collect();
    let bad_csv = lake.path().join("bad.csv");
    std::fs::write(&bad_csv, "id,amount\nA,1.00\nB,abc\n").ok_or_panic("writing bad.csv");
    let bad_schema = Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("amount", DataType::Decimal128(10, 2), true),
    ]);
    let bad = ctx
        .read_csv(
            bad_csv.to_str().expect("a UTF-8 path"),
            CsvReadOptions::new().schema(&bad_schema),
        )
        .await
        .ok_or_panic("reading bad.csv");
    let result = kata::write_parquet(bad, &output).await;
    std::fs::remove_file(&bad_csv).ok_or_panic("removing bad.csv");
    assert!(
        result.is_err(),
        "writing a DataFrame that fails to execute should return the error"
    );
    let after: Vec<(String, Vec<u8>)> = entries(&output)
        .iter()
        .map(|f| (f.clone(), std::fs::read(output.join(f)).ok_or_panic(f)))
        .collect();
    assert!(
        before == after,
        "a failed write must leave the previous output untouched"
    );
    assert_eq!(
        entries(lake.path()),
        ["customer_summary"],
        "a failed write leaves nothing beside the output"
    );
}

/// All six steps on the committed fixtures, compared with the reviewed snapshot
/// (`tests/snapshots/`; processed_at left out as it changes every run).
#[tokio::test]
async fn end_to_end() {
    let fixtures = fixtures::batch::committed_dir();
    let lake = tempfile::tempdir().ok_or_panic("a temporary folder");
    let output = lake.path().join("customer_summary");

    let ctx = kata::create_session();
    let (customers, orders) = kata::read_sources(
        &ctx,
        fixtures
            .join("customers.csv")
            .to_str()
            .expect("a UTF-8 path"),
        fixtures.join("orders.csv").to_str().expect("a UTF-8 path"),
    )
    .await
    .ok_or_panic("step 2");
    let joined = kata::join_customers(
        kata::clean(orders).ok_or_panic("step 3 on orders"),
        kata::clean(customers).ok_or_panic("step 3 on customers"),
    )
    .ok_or_panic("step 4");
    let written = kata::write_parquet(kata::summarize(joined).ok_or_panic("step 5"), &output)
        .await
        .ok_or_panic("step 6");

    let batches = read_back(&output).await;
    let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(written, total, "returned row count vs rows in the files");
    let times = processed_at_nanos(&batches);
    assert!(
        times.iter().all(|t| *t == times[0]),
        "one processed_at for the whole run"
    );

    let sorted = test_session()
        .read_batches(batches)
        .ok_or_panic("the output as a table")
        .drop_columns(&["processed_at"])
        .ok_or_panic("dropping processed_at")
        .sort(vec![
            col("customer_id").sort(true, true),
            col("name").sort(true, true),
        ])
        .ok_or_panic("sorting");
    insta::assert_snapshot!("customer_summary", pretty(&rows(sorted, "sorting").await));
}
