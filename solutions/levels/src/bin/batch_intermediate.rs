//! Batch ETL, CSV → Parquet: the answer to write in an interview (15 minutes).
//! `cargo practice grade batch --file solutions/levels/src/bin/batch_intermediate.rs`

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use datafusion::arrow::datatypes::{DataType, DataType::*, Field, Schema, TimeUnit};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::functions_aggregate::expr_fn::{avg, count, sum};
use datafusion::prelude::*;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    customers: PathBuf,
    #[arg(long)]
    orders: PathBuf,
    #[arg(long)]
    output: PathBuf,
}

fn schema(names: &str, types: &[DataType]) -> Schema {
    let field = |(name, t): (&str, &DataType)| Field::new(name, t.clone(), true);
    Schema::new(names.split(' ').zip(types).map(field).collect::<Vec<_>>())
}

/// Spark: `spark.read.schema(schema).option("header", True).csv(path)`.
async fn read(ctx: &SessionContext, path: &Path, schema: Schema) -> Result<DataFrame> {
    // DataFusion would read a missing path as an empty table.
    ensure!(path.is_file(), "input file not found: {}", path.display());
    let path = path.to_str().context("the path is not UTF-8")?;
    let options = CsvReadOptions::new().schema(&schema);
    Ok(ctx.read_csv(path, options).await?)
}

/// Spark: `df.dropDuplicates().dropna()`.
fn clean(df: DataFrame) -> Result<DataFrame> {
    let columns = df.schema().columns().into_iter();
    let no_nulls = columns.map(|c| col(c).is_not_null()).reduce(Expr::and);
    Ok(df.filter(no_nulls.unwrap_or(lit(true)))?.distinct()?)
}

/// Spark: `mode("overwrite")`, atomically: write beside the output, then swap it in.
async fn write_parquet(df: DataFrame, output: &Path) -> Result<()> {
    let (staging, old) = (
        output.with_extension("staging"),
        output.with_extension("old"),
    );
    let _ = std::fs::remove_dir_all(&staging); // a crashed run's
    let options = DataFrameWriteOptions::new();
    let target = format!("{}/", staging.display());
    if let Err(e) = df.write_parquet(&target, options, None).await {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e).context("writing the Parquet files");
    }
    if output.exists() {
        std::fs::rename(output, &old).context("moving the old output aside")?;
    }
    std::fs::rename(&staging, output).context("moving the new output in")?;
    if old.exists() {
        std::fs::remove_dir_all(&old).context("removing the old output")?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let config = SessionConfig::new()
        .with_target_partitions(cores)
        .with_repartition_joins(true)
        .with_repartition_aggregations(true)
        .with_collect_statistics(true)
        .set_str("datafusion.execution.parquet.compression", "snappy");
    let ctx = SessionContext::new_with_config(config);

    let names = "customer_id name email city signup_date";
    let customers = schema(names, &[Utf8, Utf8, Utf8, Utf8, Date32]);
    let customers = clean(read(&ctx, &args.customers, customers).await?)?;
    let names = "order_id customer_id product quantity amount order_date status";
    let types = [Utf8, Utf8, Utf8, Int32, Decimal128(10, 2), Date32, Utf8];
    let orders = schema(names, &types);
    let orders = clean(read(&ctx, &args.orders, orders).await?)?;

    let customers = customers.with_column_renamed("customer_id", "c_id")?;
    let utc = Timestamp(TimeUnit::Nanosecond, Some("+00:00".into()));
    let summary = orders
        .join(customers, JoinType::Left, &["customer_id"], &["c_id"], None)?
        .aggregate(
            vec![col("customer_id"), col("name"), col("city")],
            vec![
                sum(col("amount")).alias("total_sales"),
                count(col("order_id")).alias("order_count"),
                avg(col("amount")).alias("avg_order_value"),
            ],
        )?
        // now() is fixed when the query starts: one instant for every row.
        .with_column("processed_at", cast(now(), utc))?;
    write_parquet(summary, &args.output).await
}
