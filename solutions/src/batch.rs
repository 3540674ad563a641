//! Batch ETL, CSV → Parquet: the reference for `katas/batch_kata`.
//!
//! ```text
//! customers.csv ─┐ read (explicit schema) → clean (dropna, dropDuplicates) ─┐
//!                                                                           ├─ left join on customer_id
//! orders.csv ────┘ read (explicit schema) → clean (dropna, dropDuplicates) ─┘    → aggregate per customer
//!                                                                                 → Parquet (atomic overwrite)
//! ```
//!
//! [`run`] is the whole pipeline as the `batch_etl` binary runs it, with the counts an
//! operator wants in the logs.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use anyhow::Context;
use datafusion::arrow::array::{Array, AsArray, StringArray};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Schema, TimeUnit, UInt64Type};
use datafusion::common::{DataFusionError, JoinType, plan_err};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::error::Result;
use datafusion::functions::expr_fn::now;
use datafusion::functions_aggregate::expr_fn::{avg, count, sum};
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::*;
use fixtures::batch::{customers_schema, orders_schema};
use tracing::info;

/// Step 1. Spark: `SparkSession.builder.config("spark.sql.adaptive.enabled", "true").getOrCreate()`
pub fn create_session() -> SessionContext {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let config = SessionConfig::new()
        .with_target_partitions(cores)
        .with_repartition_joins(true)
        .with_repartition_aggregations(true)
        .with_collect_statistics(true)
        // Spark's default codec, and the one compiled into this build.
        .set_str("datafusion.execution.parquet.compression", "snappy");
    SessionContext::new_with_config(config)
}

/// Step 2. Spark: `spark.read.schema(schema).option("header", True).csv(path)`
pub async fn read_sources(
    ctx: &SessionContext,
    customers_csv: &str,
    orders_csv: &str,
) -> Result<(DataFrame, DataFrame)> {
    for path in [customers_csv, orders_csv] {
        if !Path::new(path).is_file() {
            return plan_err!("input file not found: {path}");
        }
    }
    let (customers_schema, orders_schema) = (customers_schema(), orders_schema());
    let options = |schema| CsvReadOptions::new().has_header(true).schema(schema);
    let customers = ctx
        .read_csv(customers_csv, options(&customers_schema))
        .await?;
    let orders = ctx.read_csv(orders_csv, options(&orders_schema)).await?;
    Ok((customers, orders))
}

/// Step 3. Spark: `df.dropDuplicates().dropna()`
///
/// Dropping nulls first gives the same rows and leaves less for the distinct to hash.
pub fn clean(df: DataFrame) -> Result<DataFrame> {
    drop_nulls(df)?.distinct()
}

/// Spark: `df.dropna()` (how="any").
fn drop_nulls(df: DataFrame) -> Result<DataFrame> {
    let no_nulls = df
        .schema()
        .columns()
        .into_iter()
        .map(|c| col(c).is_not_null())
        .reduce(Expr::and)
        .unwrap_or(lit(true));
    df.filter(no_nulls)
}

/// Step 4. Spark: `orders.join(customers, "customer_id", "left")`
pub fn join_customers(orders: DataFrame, customers: DataFrame) -> Result<DataFrame> {
    // Rename the right key so the joined table keeps a single customer_id.
    let customers = customers.with_column_renamed("customer_id", "c_customer_id")?;
    orders
        .join(
            customers,
            JoinType::Left,
            &["customer_id"],
            &["c_customer_id"],
            None,
        )?
        .drop_columns(&["c_customer_id"])
}

/// Step 5. Spark: `groupBy(...).agg(sum, count, avg).withColumn("processed_at", current_timestamp())`
pub fn summarize(joined: DataFrame) -> Result<DataFrame> {
    joined
        .aggregate(
            vec![col("customer_id"), col("name"), col("city")],
            vec![
                sum(col("amount")).alias("total_sales"),
                count(col("order_id")).alias("order_count"),
                avg(col("amount")).alias("avg_order_value"),
            ],
        )?
        // now() is fixed at the start of the query: one timestamp for every row.
        .with_column("processed_at", cast(now(), utc_timestamp()))
}

/// An instant in UTC, so readers in any time zone agree on it.
fn utc_timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into()))
}

/// Step 6. Spark: `df.write.mode("overwrite").parquet(path)`
///
/// Writes into a staging directory beside `output`, then swaps it in: readers see the
/// old output or the new one, and a failed write leaves the old one untouched.
pub async fn write_parquet(df: DataFrame, output: &Path) -> Result<usize> {
    let (parent, name) = split_output(output)?;
    std::fs::create_dir_all(&parent)?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}.staging-"))
        .tempdir_in(&parent)?;
    // A trailing slash makes DataFusion write a directory of part files.
    let target = format!("{}/", staging.path().display());
    let result = df
        .write_parquet(&target, DataFrameWriteOptions::new(), None)
        .await?;
    let rows = result
        .iter()
        .map(|batch| batch.column(0).as_primitive::<UInt64Type>())
        .map(|counts| counts.iter().flatten().sum::<u64>())
        .sum::<u64>();

    let staged = staging.keep();
    if output.exists() {
        let old = tempfile::Builder::new()
            .prefix(&format!(".{name}.old-"))
            .tempdir_in(&parent)?
            .keep();
        std::fs::rename(output, old.join("output"))?;
        std::fs::rename(&staged, output)?;
        std::fs::remove_dir_all(&old)?;
    } else {
        std::fs::rename(&staged, output)?;
    }
    Ok(rows as usize)
}

fn split_output(output: &Path) -> Result<(PathBuf, String)> {
    let name = output.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        DataFusionError::Plan(format!("output {} has no directory name", output.display()))
    })?;
    let parent = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name.to_string()))
}

/// What one run did, as `batch_etl` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub customers_read: usize,
    pub customers_with_nulls: usize,
    pub customers_duplicates: usize,
    pub orders_read: usize,
    pub orders_with_nulls: usize,
    pub orders_duplicates: usize,
    pub rows_written: usize,
    /// Summary rows whose total_sales is null (the seed's data-quality check).
    pub null_total_sales: usize,
    /// Summary rows for customer ids with no clean customer record (name is null).
    pub unmatched_customers: usize,
}

/// The whole pipeline. Each source is parsed once and kept in memory, so the counts of
/// what cleaning removed cost no second read, and a bad value is reported with its file.
pub async fn run(
    customers_csv: &Path,
    orders_csv: &Path,
    output: &Path,
) -> anyhow::Result<Summary> {
    let ctx = create_session();
    let (customers_path, orders_path) = (path_str(customers_csv)?, path_str(orders_csv)?);
    let (customers, orders) = read_sources(&ctx, customers_path, orders_path)
        .await
        .context("opening the input CSV files")?;

    let (customers, c) = clean_counted(&ctx, customers, customers_csv, &customers_schema()).await?;
    let (orders, o) = clean_counted(&ctx, orders, orders_csv, &orders_schema()).await?;
    info!(
        rows = c.0,
        with_nulls = c.1,
        duplicates = c.2,
        "customers cleaned"
    );
    info!(
        rows = o.0,
        with_nulls = o.1,
        duplicates = o.2,
        "orders cleaned"
    );

    let summary = summarize_before_join(orders, customers)?.cache().await?;
    let null_total_sales = summary
        .clone()
        .filter(col("total_sales").is_null())?
        .count()
        .await?;
    let unmatched_customers = summary
        .clone()
        .filter(col("name").is_null())?
        .count()
        .await?;
    let rows_written = write_parquet(summary, output)
        .await
        .with_context(|| format!("writing Parquet to {}", output.display()))?;
    info!(rows = rows_written, output = %output.display(), "customer summary written");
    info!(
        "Quality: {null_total_sales}/{rows_written} null records, {unmatched_customers} without a customer"
    );

    Ok(Summary {
        customers_read: c.0,
        customers_with_nulls: c.1,
        customers_duplicates: c.2,
        orders_read: o.0,
        orders_with_nulls: o.1,
        orders_duplicates: o.2,
        rows_written,
        null_total_sales,
        unmatched_customers,
    })
}

/// Steps 4 and 5 with the aggregation moved below the join, so that the join sees one
/// row per customer instead of one per order. Same result as
/// `summarize(join_customers(orders, customers))`, also when a customer id has several
/// clean rows: each (customer_id, name, city) group then counts its orders `k` times,
/// like the join would; the average is unchanged by the repetition.
fn summarize_before_join(orders: DataFrame, customers: DataFrame) -> Result<DataFrame> {
    let per_customer = orders.aggregate(
        vec![col("customer_id")],
        vec![
            sum(col("amount")).alias("total_sales"),
            count(col("order_id")).alias("order_count"),
            avg(col("amount")).alias("avg_order_value"),
        ],
    )?;
    let copies = customers
        .aggregate(
            vec![col("customer_id"), col("name"), col("city")],
            vec![count(lit(1)).alias("copies")],
        )?
        .with_column_renamed("customer_id", "c_customer_id")?;
    let k = coalesce(vec![col("copies"), lit(1i64)]);
    let total_type = per_customer
        .schema()
        .field_with_name(None, "total_sales")?
        .data_type()
        .clone();
    per_customer
        .join(
            copies,
            JoinType::Left,
            &["customer_id"],
            &["c_customer_id"],
            None,
        )?
        .select(vec![
            col("customer_id"),
            col("name"),
            col("city"),
            cast(col("total_sales") * k.clone(), total_type).alias("total_sales"),
            (col("order_count") * k).alias("order_count"),
            col("avg_order_value"),
            cast(now(), utc_timestamp()).alias("processed_at"),
        ])
}

/// Reads and cleans a source in one pass, keeping the result in memory; returns it with
/// (rows read, rows with a null, duplicate rows), taken from the plan's metrics so that
/// counting costs no second pass over the data.
async fn clean_counted(
    ctx: &SessionContext,
    df: DataFrame,
    path: &Path,
    schema: &Schema,
) -> anyhow::Result<(DataFrame, (usize, usize, usize))> {
    let plan = clean(df)?.create_physical_plan().await?;
    let batches = match collect(plan.clone(), ctx.task_ctx()).await {
        Ok(batches) => batches,
        Err(error) => {
            // DataFusion's parse errors do not always say where; find the first bad value.
            return Err(match locate_bad_value(path, schema) {
                Ok(Some(bad)) => anyhow::anyhow!("{}: {bad}", path.display()),
                _ => anyhow::Error::new(error).context(format!("reading {}", path.display())),
            });
        }
    };
    let read = output_rows(plan.as_ref(), "DataSourceExec");
    let non_null = output_rows(plan.as_ref(), "FilterExec");
    let kept = batches.iter().map(|b| b.num_rows()).sum::<usize>();
    let cleaned = ctx.read_batches(batches)?;
    Ok((cleaned, (read, read - non_null, non_null - kept)))
}

/// Rows produced by the plan's nodes called `name`, from their metrics.
fn output_rows(plan: &dyn ExecutionPlan, name: &str) -> usize {
    let own = match plan.name() == name {
        true => plan.metrics().and_then(|m| m.output_rows()).unwrap_or(0),
        false => 0,
    };
    own + plan
        .children()
        .into_iter()
        .map(|child| output_rows(child.as_ref(), name))
        .sum::<usize>()
}

/// A value in a CSV file that does not parse as its column's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadValue {
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
    pub column: String,
    pub value: String,
    pub expected: DataType,
}

impl std::fmt::Display for BadValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {:?} is not a valid {}",
            self.line, self.column, self.value, self.expected
        )
    }
}

/// The first value of `path` that Arrow cannot cast to its column's type in `schema`
/// (checked a chunk of rows at a time with Arrow's own cast kernel), if any.
pub fn locate_bad_value(path: &Path, schema: &Schema) -> anyhow::Result<Option<BadValue>> {
    const CHUNK: usize = 8192;
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("opening {}", path.display()))?;
    let mut rows: Vec<csv::StringRecord> = Vec::with_capacity(CHUNK);
    let mut records = reader.records();
    loop {
        rows.clear();
        for record in records.by_ref().take(CHUNK) {
            rows.push(record.with_context(|| format!("reading {}", path.display()))?);
        }
        if rows.is_empty() {
            return Ok(None);
        }
        for (index, field) in schema.fields().iter().enumerate() {
            let text: StringArray = rows
                .iter()
                .map(|r| r.get(index).filter(|v| !v.is_empty()))
                .collect();
            let cast = cast_with_options(&text, field.data_type(), &CastOptions::default())?;
            // A safe cast turns unparsable values into nulls: the first new null is the culprit.
            if let Some(row) = (0..rows.len()).find(|&i| text.is_valid(i) && cast.is_null(i)) {
                return Ok(Some(BadValue {
                    line: rows[row].position().map_or(0, |p| p.line()),
                    column: field.name().clone(),
                    value: text.value(row).to_string(),
                    expected: field.data_type().clone(),
                }));
            }
        }
    }
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not valid UTF-8", path.display()))
}
