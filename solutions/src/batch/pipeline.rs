//! The production pipeline the `batch_etl` binary runs: the steps with the counts an
//! operator wants in the logs, one parse per source, and bad values reported with
//! their file, line and column.

use std::path::Path;

use anyhow::Context;
use datafusion::arrow::array::{Array, StringArray};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::JoinType;
use datafusion::error::Result;
use datafusion::functions::expr_fn::now;
use datafusion::functions_aggregate::expr_fn::{avg, count, sum};
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::*;
use fixtures::batch::{customers_schema, orders_schema};
use tracing::info;

use super::steps::{clean, create_session, read_sources, utc_timestamp, write_parquet};

/// What one run did, as `batch_etl` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineCounts {
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
) -> anyhow::Result<PipelineCounts> {
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

    Ok(PipelineCounts {
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
