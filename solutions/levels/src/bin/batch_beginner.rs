//! Batch ETL, CSV → Parquet, with every line explained (the beginner level).
//!
//! The same pipeline as `batch_intermediate.rs`, the answer to write in an interview,
//! with the reasons written out: why each option, which PySpark line it replaces, and
//! the pitfall it avoids. Read it once slowly, then write the intermediate one from
//! memory.
//!
//! ```text
//! cargo practice grade batch --file solutions/levels/src/bin/batch_beginner.rs
//! ```
//!
//! The pipeline, as in the PySpark original:
//!
//! ```text
//! customers.csv ─ read (explicit schema) ─ dropDuplicates().dropna() ─┐
//!                                                                     ├─ orders LEFT JOIN customers
//! orders.csv ──── read (explicit schema) ─ dropDuplicates().dropna() ─┘   → groupBy(customer_id, name, city)
//!                                                                           .agg(sum, count, avg)
//!                                                                         → Parquet, overwritten atomically
//! ```

// `Path` is a borrowed path (like `&str`), `PathBuf` an owned one (like `String`).
use std::path::{Path, PathBuf};

// anyhow: one error type for everything. `Context` adds a sentence to an error on its
// way up (`.context("reading X")`), `ensure!` returns an error when a condition fails,
// and `Result<T>` is `Result<T, anyhow::Error>`.
use anyhow::{Context, Result, ensure};
// clap's derive turns a struct into a command-line parser, with --help for free.
use clap::Parser;
// Arrow's types describe columns; DataFusion works on Arrow data. `DataType::*` lets us
// write `Utf8` instead of `DataType::Utf8` in the schemas below.
use datafusion::arrow::datatypes::{DataType, DataType::*, Field, Schema, TimeUnit};
// The options of `DataFrame::write_parquet` (partitioning, sorting; the defaults suit us).
use datafusion::dataframe::DataFrameWriteOptions;
// The aggregate functions: Spark's `F.sum`, `F.count`, `F.avg`. They are not in the
// prelude, unlike the scalar functions (`now`, `coalesce`, ...).
use datafusion::functions_aggregate::expr_fn::{avg, count, sum};
// SessionContext (SparkSession), DataFrame, col/lit, CsvReadOptions, JoinType, now().
use datafusion::prelude::*;

/// The command line: `--customers FILE --orders FILE --output DIR`.
#[derive(Parser)]
struct Args {
    /// customers.csv: customer_id,name,email,city,signup_date
    #[arg(long)]
    customers: PathBuf,
    /// orders.csv: order_id,customer_id,product,quantity,amount,order_date,status
    #[arg(long)]
    orders: PathBuf,
    /// The output folder of Parquet files, replaced as a whole.
    #[arg(long)]
    output: PathBuf,
}

/// A schema from column names (separated by spaces) and their types.
///
/// Spark: `StructType([StructField(name, type, True), ...])`.
fn schema(names: &str, types: &[DataType]) -> Schema {
    // Every column nullable (`true`): the files have empty fields, and a non-nullable
    // column would make the reader fail on the first one instead of reading a null.
    let field = |(name, t): (&str, &DataType)| Field::new(name, t.clone(), true);
    // zip pairs the i-th name with the i-th type.
    Schema::new(names.split(' ').zip(types).map(field).collect::<Vec<_>>())
}

/// Step 2: read one CSV file with an explicit schema.
///
/// Spark: `spark.read.schema(schema).option("header", True).csv(path)`.
async fn read(ctx: &SessionContext, path: &Path, schema: Schema) -> Result<DataFrame> {
    // Pitfall: DataFusion reads a path that does not exist as an empty table (it lists a
    // folder), so a typo would give an empty result and exit 0. Fail, naming the file.
    ensure!(path.is_file(), "input file not found: {}", path.display());
    // DataFusion takes paths as text (it also reads URLs such as s3://).
    let path = path.to_str().context("the path is not UTF-8")?;
    // CsvReadOptions::new() already expects a header line and a comma. The explicit
    // schema replaces inference, which would guess from a sample: amounts as Float64
    // (money with rounding errors), and other types on other data. An empty field is
    // read as null; a value that does not parse (an amount of "abc") is an error when
    // the query runs, which is what we want: bad input must not pass silently.
    let options = CsvReadOptions::new().schema(&schema);
    // read_csv is lazy, like Spark: it plans the read, nothing is parsed yet.
    Ok(ctx.read_csv(path, options).await?)
}

/// Step 3: Spark's `df.dropDuplicates().dropna()`, for any schema.
fn clean(df: DataFrame) -> Result<DataFrame> {
    // dropna() (how="any"): keep a row only if every column is not null, i.e.
    // `c1 IS NOT NULL AND c2 IS NOT NULL AND ...`, built from the DataFrame's own
    // columns so that the same function cleans customers and orders.
    let columns = df.schema().columns().into_iter();
    let no_nulls = columns.map(|c| col(c).is_not_null()).reduce(Expr::and);
    // Filtering first is cheaper (fewer rows to hash) and gives the same rows: a
    // duplicate of a row with a null has the null too. `unwrap_or(lit(true))` covers a
    // table without columns, where reduce has nothing to combine.
    // distinct() is dropDuplicates() without arguments: one copy of identical rows.
    Ok(df.filter(no_nulls.unwrap_or(lit(true)))?.distinct()?)
}

/// Step 6: Spark's `df.write.mode("overwrite").parquet(output)`, done safely.
///
/// Pitfall: deleting the output and then writing loses the old result if the query
/// fails halfway (a malformed value is only found while writing, since DataFusion is
/// lazy), and a reader could see a half-written folder. So: write everything into a
/// staging folder beside the output, and swap it in only when it is complete.
async fn write_parquet(df: DataFrame, output: &Path) -> Result<()> {
    // Beside the output (same parent folder, same file system), so that the renames
    // below are atomic: `customer_summary.staging` and `customer_summary.old`.
    let (staging, old) = (
        output.with_extension("staging"),
        output.with_extension("old"),
    );
    // A staging folder left by a crashed run would mix its files with ours.
    let _ = std::fs::remove_dir_all(&staging); // absent is fine: nothing to remove
    let options = DataFrameWriteOptions::new();
    // The trailing slash makes DataFusion write a folder of part files (one per
    // partition), like Spark; without it, a path with an extension is one file.
    let target = format!("{}/", staging.display());
    // This runs the whole query: read, clean, join, aggregate, write.
    if let Err(e) = df.write_parquet(&target, options, None).await {
        // Failed: remove the half-written staging folder, leave the output untouched.
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e).context("writing the Parquet files");
    }
    // rename() cannot replace a non-empty folder: move the old one aside first...
    if output.exists() {
        std::fs::rename(output, &old).context("moving the old output aside")?;
    }
    // ...swap the new one in (a reader sees the old folder or the new one)...
    std::fs::rename(&staging, output).context("moving the new output in")?;
    // ...and only then delete the old one.
    if old.exists() {
        std::fs::remove_dir_all(&old).context("removing the old output")?;
    }
    Ok(())
}

// Starts tokio's runtime and runs `main` on it: DataFusion is async.
// Returning `Result` from main: an error is printed on stderr and the exit status is 1.
#[tokio::main]
async fn main() -> Result<()> {
    // Parses --customers, --orders, --output; on a mistake prints usage and exits 2.
    let args = Args::parse();

    // Step 1: the session. Spark: SparkSession.builder
    //   .config("spark.sql.adaptive.enabled", "true").getOrCreate()
    // One partition per core: all cores busy, no more tasks than they can run.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let config = SessionConfig::new()
        .with_target_partitions(cores)
        // Joins and aggregations spread over those partitions (Spark's shuffle
        // partitions, which AQE would coalesce).
        .with_repartition_joins(true)
        .with_repartition_aggregations(true)
        // Row counts and min/max per file, so the planner picks better plans (AQE's
        // runtime statistics).
        .with_collect_statistics(true)
        // Spark writes Snappy Parquet; DataFusion's default is zstd. Any option can be
        // set by its key, like spark.conf.set("spark.sql.parquet.compression.codec").
        .set_str("datafusion.execution.parquet.compression", "snappy");
    let ctx = SessionContext::new_with_config(config);

    // Step 2 then 3, for each file: read with a declared schema, then clean.
    let names = "customer_id name email city signup_date";
    // Date32: a calendar date (days since 1970-01-01), what Spark calls DateType.
    let customers = schema(names, &[Utf8, Utf8, Utf8, Utf8, Date32]);
    // `.await?`: run the future, and return early with the error if there is one.
    let customers = clean(read(&ctx, &args.customers, customers).await?)?;
    let names = "order_id customer_id product quantity amount order_date status";
    // Money is Decimal128(10, 2) (up to 99,999,999.99, exact cents): a float would
    // make sums depend on the order of addition. Spark: DecimalType(10, 2).
    let types = [Utf8, Utf8, Utf8, Int32, Decimal128(10, 2), Date32, Utf8];
    let orders = clean(read(&ctx, &args.orders, schema(names, &types)).await?)?;

    // Step 4: Spark's orders.join(customers, "customer_id", "left").
    // DataFusion keeps both key columns, and two columns named customer_id would be
    // ambiguous, so the customers' key gets another name first.
    let customers = customers.with_column_renamed("customer_id", "c_id")?;
    // processed_at's type: an instant in UTC (a timestamp with a time zone), so that
    // readers in any time zone agree on it. Spark's TimestampType is such an instant.
    let utc = Timestamp(TimeUnit::Nanosecond, Some("+00:00".into()));
    let summary = orders
        // LEFT: every order is kept; an order whose customer is unknown (or was cleaned
        // away) gets nulls for name, email, city. Pitfall: an inner join would silently
        // drop those orders from the totals.
        .join(customers, JoinType::Left, &["customer_id"], &["c_id"], None)?
        // Step 5: Spark's groupBy("customer_id", "name", "city").agg(...).
        .aggregate(
            // customer_id from the orders side: never null after cleaning, and it keeps
            // the unknown customers' orders apart from each other.
            vec![col("customer_id"), col("name"), col("city")],
            vec![
                // Decimal in, decimal out: sum gives Decimal128(20, 2), exact.
                sum(col("amount")).alias("total_sales"),
                // count(column) counts non-null values: order_id is never null after
                // cleaning. Pitfall: counting a customers' column (name, c_id) would
                // count 0 orders for an unknown customer.
                count(col("order_id")).alias("order_count"),
                // avg of a Decimal128(10, 2) is a Decimal128(14, 6).
                avg(col("amount")).alias("avg_order_value"),
            ],
        )?
        // Spark: withColumn("processed_at", current_timestamp()). now() is fixed when
        // the query starts, so every row gets the same instant. It has no time zone
        // by default (a wall-clock time): the cast labels it as UTC.
        .with_column("processed_at", cast(now(), utc))?;
    // Step 6: run the query and replace the output.
    write_parquet(summary, &args.output).await
}
