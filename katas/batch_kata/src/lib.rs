//! # Batch ETL kata: CSV → Parquet
//!
//! The interview classic: read customers and orders from CSV, clean both, join them,
//! aggregate sales per customer and write the result as Parquet.
//! Target: 15 minutes from memory (expert: 10).
//!
//! Write the six steps below. Each has its own test, so do them in any order:
//!
//! ```text
//! cargo test -p batch_kata            # every step, as a checklist
//! cargo test -p batch_kata step_03    # one step
//! cargo practice batch                # guided mode: hints, timer, re-run on save
//! git checkout -- katas/batch_kata    # start over
//! ```
//!
//! The input files (see `fixtures/batch/`):
//!
//! ```text
//! customers.csv  customer_id,name,email,city,signup_date
//! orders.csv     order_id,customer_id,product,quantity,amount,order_date,status
//! ```
//!
//! CSV per RFC 4180 with a header line; an empty field means null.

// The bodies start as `todo!()`, so the arguments are unused until you write them.
#![allow(unused_variables)]

use std::path::Path;

use datafusion::error::Result;
use datafusion::prelude::{DataFrame, SessionContext};

/// Step 1: create the session.
///
/// Spark: `SparkSession.builder.config("spark.sql.adaptive.enabled", "true").getOrCreate()`
///
/// Return a [`SessionContext`] configured for this batch job on this machine:
/// - `target_partitions` equal to the number of CPU cores available to the process;
/// - joins and aggregations repartitioned across those partitions;
/// - statistics collected when reading files;
/// - Parquet written with Snappy compression (Spark's default codec; DataFusion's
///   default is zstd, which the test tells apart).
pub fn create_session() -> SessionContext {
    todo!("step 1: create_session")
}

/// Step 2: read both sources with an explicit schema.
///
/// Spark: `spark.read.schema(schema).option("header", True).csv(path)`
///
/// Return `(customers, orders)` read from the two CSV files, with a header line and
/// these column types (all nullable; an empty field is null). Declare the schema
/// yourself: inference would guess, and guess differently on other data.
///
/// | customers   | type         | orders      | type              |
/// |-------------|--------------|-------------|-------------------|
/// | customer_id | `Utf8`       | order_id    | `Utf8`            |
/// | name        | `Utf8`       | customer_id | `Utf8`            |
/// | email       | `Utf8`       | product     | `Utf8`            |
/// | city        | `Utf8`       | quantity    | `Int32`           |
/// | signup_date | `Date32`     | amount      | `Decimal128(10, 2)` |
/// |             |              | order_date  | `Date32`          |
/// |             |              | status      | `Utf8`            |
///
/// A path that is not an existing file is an error naming it (DataFusion would
/// otherwise read a missing path as an empty table).
pub async fn read_sources(
    ctx: &SessionContext,
    customers_csv: &str,
    orders_csv: &str,
) -> Result<(DataFrame, DataFrame)> {
    todo!("step 2: read_sources")
}

/// Step 3: clean one source.
///
/// Spark: `df.dropDuplicates().dropna()`
///
/// Return `df` without fully identical duplicate rows (one copy kept) and without
/// rows that have a null in any column. Same columns, in the same order. Works for
/// any schema: it is called on customers and on orders.
pub fn clean(df: DataFrame) -> Result<DataFrame> {
    todo!("step 3: clean")
}

/// Step 4: attach each order's customer.
///
/// Spark: `orders.join(customers, "customer_id", "left")`
///
/// Left join `orders` to `customers` on `customer_id`: every order is kept, once per
/// matching customer; an order whose customer is unknown gets nulls for the customer
/// columns. The result has `customer_id` once, in this column order:
///
/// `order_id, customer_id, product, quantity, amount, order_date, status, name, email, city, signup_date`
pub fn join_customers(orders: DataFrame, customers: DataFrame) -> Result<DataFrame> {
    todo!("step 4: join_customers")
}

/// Step 5: aggregate per customer.
///
/// Spark: `df.groupBy("customer_id", "name", "city").agg(sum, count, avg).withColumn("processed_at", current_timestamp())`
///
/// One row per `(customer_id, name, city)` of the joined table, with these columns:
///
/// | column            | value                          | type                  |
/// |-------------------|--------------------------------|-----------------------|
/// | customer_id       | group key                      | `Utf8`                |
/// | name              | group key                      | `Utf8`                |
/// | city              | group key                      | `Utf8`                |
/// | total_sales       | sum of `amount`                | `Decimal128(20, 2)`   |
/// | order_count       | count of `order_id`            | `Int64`               |
/// | avg_order_value   | average of `amount`            | `Decimal128(14, 6)`   |
/// | processed_at      | when the query runs; the same for every row | `Timestamp(Nanosecond, "+00:00")` |
///
/// `processed_at` is an instant in UTC (a timestamp with a time zone), so readers in
/// any zone agree on it.
pub fn summarize(joined: DataFrame) -> Result<DataFrame> {
    todo!("step 5: summarize")
}

/// Step 6: write the result as Parquet, replacing what was there.
///
/// Spark: `df.write.mode("overwrite").parquet(path)`
///
/// Execute `df` and write it as a directory of Parquet files at `output`, then return
/// the number of rows written. Overwrite semantics, done safely:
/// - afterwards `output` holds exactly this result: files of an earlier run are gone;
/// - the new files are written beside `output` first and swapped in only when all of
///   them are complete, so a reader never sees a half-written directory;
/// - if executing or writing fails, the error is returned and whatever was at
///   `output` before is left untouched, with no leftovers beside it.
pub async fn write_parquet(df: DataFrame, output: &Path) -> Result<usize> {
    todo!("step 6: write_parquet")
}

// The tests grade your steps through this module, or the reference solution's with
// `--features reference`. Leave it as it is.
pub mod graded;
