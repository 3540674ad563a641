//! The production pipeline the `batch_etl` binary runs: the steps as one plan, with the
//! counts an operator wants in the logs, and bad values reported with their file, line
//! and column.
//!
//! What makes it faster than composing the steps (see the README, Performance):
//! - one physical plan from the CSV files to the summary, each source read once; what
//!   cleaning removed is counted from the plan's metrics;
//! - strings read as `Utf8View` (ids and short names fit inline, so hashing and
//!   comparing them touches no other buffer), cast back to the contract's types at
//!   the end;
//! - orders aggregated per customer before the join (200k rows joined instead of 5M);
//! - one shuffle per source, on `customer_id` ([`ShuffleOnceByKey`]).

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use datafusion::arrow::array::{Array, StringArray};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::JoinType;
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionStateBuilder;
use datafusion::functions::expr_fn::now;
use datafusion::functions_aggregate::expr_fn::{avg, count, sum};
use datafusion::physical_plan::{ExecutionPlan, collect_partitioned};
use datafusion::prelude::*;
use fixtures::batch::{customers_schema, orders_schema, summary_columns};
use tracing::info;

use super::shuffle::ShuffleOnceByKey;
use super::steps::{clean, create_session, read_csv, utc_timestamp, write_parquet};

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

/// The whole pipeline, as one plan from the CSV files to the summary, kept in memory
/// (201k rows for 5M orders) for the quality counts, then written.
pub async fn run(
    customers_csv: &Path,
    orders_csv: &Path,
    output: &Path,
) -> anyhow::Result<PipelineCounts> {
    let (ctx, plan) = summary_plan(customers_csv, orders_csv).await?;
    let partitions = match collect_partitioned(plan.clone(), ctx.task_ctx()).await {
        Ok(partitions) => partitions,
        Err(error) => {
            let sources = [
                (customers_csv, customers_schema()),
                (orders_csv, orders_schema()),
            ];
            return Err(read_error(error, &sources));
        }
    };
    let c = cleaning_counts(plan.as_ref(), &customers_schema())
        .context("counting what cleaning removed from the customers")?;
    let o = cleaning_counts(plan.as_ref(), &orders_schema())
        .context("counting what cleaning removed from the orders")?;
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

    let batches = partitions.iter().flatten();
    let nulls = |column: &str| -> usize {
        batches
            .clone()
            .filter_map(|batch| batch.column_by_name(column))
            .map(|values| values.null_count())
            .sum()
    };
    let (null_total_sales, unmatched_customers) = (nulls("total_sales"), nulls("name"));
    let summary = ctx.read_table(Arc::new(MemTable::try_new(plan.schema(), partitions)?))?;
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

/// The physical plan of the customer summary and the session to run it in: steps 2 to 5
/// as one plan, in the contract's types.
pub async fn summary_plan(
    customers_csv: &Path,
    orders_csv: &Path,
) -> anyhow::Result<(SessionContext, Arc<dyn ExecutionPlan>)> {
    let ctx = pipeline_session();
    let read = |path, schema| read_csv(&ctx, path, schema);
    let customers_schema = string_views(&customers_schema());
    let orders_schema = string_views(&orders_schema());
    let customers = read(path_str(customers_csv)?, &customers_schema)
        .await
        .context("opening the input CSV files")?;
    let orders = read(path_str(orders_csv)?, &orders_schema)
        .await
        .context("opening the input CSV files")?;
    let summary = summarize_before_join(clean(orders)?, clean(customers)?)?;
    // Back to the contract's types (the strings were read as views).
    let summary = summary.select(
        summary_columns()
            .into_iter()
            .map(|(name, data_type)| cast(col(name), data_type).alias(name))
            .collect::<Vec<_>>(),
    )?;
    let plan = summary.create_physical_plan().await?;
    Ok((ctx, plan))
}

/// Step 1's session, with the rule that shuffles each source once, by customer.
fn pipeline_session() -> SessionContext {
    let state = SessionStateBuilder::new_from_existing(create_session().state())
        .with_physical_optimizer_rule(Arc::new(ShuffleOnceByKey::new("customer_id")))
        .build();
    SessionContext::new_with_state(state)
}

/// `schema` with its strings as `Utf8View`.
fn string_views(schema: &Schema) -> Schema {
    let view = |field: &Arc<Field>| match field.data_type() {
        DataType::Utf8 => field.as_ref().clone().with_data_type(DataType::Utf8View),
        _ => field.as_ref().clone(),
    };
    Schema::new(schema.fields().iter().map(view).collect::<Vec<_>>())
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

/// (rows read, rows with a null, duplicate rows) of the source whose columns are
/// `schema`'s, from the metrics of its distinct in the executed `plan`: the topmost
/// aggregate whose output has exactly these columns.
fn cleaning_counts(
    plan: &dyn ExecutionPlan,
    schema: &Schema,
) -> anyhow::Result<(usize, usize, usize)> {
    let names = |s: &Schema| {
        s.fields()
            .iter()
            .map(|f| f.name().clone())
            .collect::<Vec<_>>()
    };
    let wanted = names(schema);
    let distinct = find_node(plan, &|node| {
        node.name() == "AggregateExec" && names(&node.schema()) == wanted
    })
    .with_context(|| format!("no distinct over {wanted:?} in the plan"))?;
    let read = output_rows(distinct, "DataSourceExec");
    let non_null = output_rows(distinct, "FilterExec");
    let kept = distinct
        .metrics()
        .and_then(|m| m.output_rows())
        .unwrap_or(0);
    Ok((read, read - non_null, non_null - kept))
}

/// The first node of `plan`, depth first, that `wanted` accepts.
fn find_node<'a>(
    plan: &'a dyn ExecutionPlan,
    wanted: &dyn Fn(&dyn ExecutionPlan) -> bool,
) -> Option<&'a dyn ExecutionPlan> {
    if wanted(plan) {
        return Some(plan);
    }
    plan.children()
        .into_iter()
        .find_map(|child| find_node(child.as_ref(), wanted))
}

/// DataFusion's parse errors do not always say where: name the first bad value of the
/// sources, if one of them has one.
fn read_error(error: DataFusionError, sources: &[(&Path, Arc<Schema>)]) -> anyhow::Error {
    for (path, schema) in sources {
        if let Ok(Some(bad)) = locate_bad_value(path, schema) {
            return anyhow::anyhow!("{}: {bad}", path.display());
        }
    }
    let paths = sources.iter().map(|(path, _)| path.display().to_string());
    anyhow::Error::new(error).context(format!(
        "reading {}",
        paths.collect::<Vec<_>>().join(" and ")
    ))
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
                let start = rows[row].position().map_or(0, |p| p.byte());
                return Ok(Some(BadValue {
                    line: line_at(path, start)
                        .with_context(|| format!("reading {}", path.display()))?,
                    column: field.name().clone(),
                    value: text.value(row).to_string(),
                    expected: field.data_type().clone(),
                }));
            }
        }
    }
}

/// The 1-based line of the record that starts at byte `start` of `path`. Not csv's own
/// line count, which is one short in files with `\r\n` line ends (rust-csv issue 395),
/// like the fixtures generator's: there the record's offset is the `\n` that ends the line
/// before it, counted here with the lines before.
fn line_at(path: &Path, start: u64) -> std::io::Result<u64> {
    let mut before = File::open(path)?.take(start + 1);
    let mut buffer = vec![0; 1 << 16];
    let mut line = 1;
    loop {
        match before.read(&mut buffer)? {
            0 => return Ok(line),
            n => line += buffer[..n].iter().filter(|&&byte| byte == b'\n').count() as u64,
        }
    }
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not valid UTF-8", path.display()))
}
