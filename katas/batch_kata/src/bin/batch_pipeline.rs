//! Runs the six graded steps as one pipeline and prints the result: reference mode
//! (`cargo practice batch -m reference`) shows the reference's output with it.
//!
//! ```text
//! cargo run -q -p batch_kata --features cli --bin batch_pipeline -- \
//!     --customers C.csv --orders O.csv --output DIR            # your steps
//! cargo run -q -p batch_kata --features cli,reference --bin batch_pipeline -- ...   # the reference
//! ```
//!
//! Stdout: the Parquet written to DIR, read back, without the run-dependent
//! `processed_at`, sorted on every column, as CSV. Two implementations agree when
//! their outputs are byte-identical.

use std::path::PathBuf;
use std::process::ExitCode;

use batch_kata::graded as kata;
use clap::Parser;
use datafusion::arrow::csv::WriterBuilder;
use datafusion::error::Result;
use datafusion::prelude::*;

#[derive(Parser)]
#[command(about = "Run the batch kata's six steps end to end and print the result as sorted CSV")]
struct Args {
    #[arg(long)]
    customers: PathBuf,
    #[arg(long)]
    orders: PathBuf,
    #[arg(long)]
    output: PathBuf,
}

async fn pipeline(args: &Args) -> Result<Vec<u8>> {
    let ctx = kata::create_session();
    let (customers, orders) = kata::read_sources(
        &ctx,
        &args.customers.to_string_lossy(),
        &args.orders.to_string_lossy(),
    )
    .await?;
    let joined = kata::join_customers(kata::clean(orders)?, kata::clean(customers)?)?;
    kata::write_parquet(kata::summarize(joined)?, &args.output).await?;

    let result = ctx
        .read_parquet(
            format!("{}/", args.output.display()),
            ParquetReadOptions::default(),
        )
        .await?
        .drop_columns(&["processed_at"])?;
    let order = result
        .schema()
        .columns()
        .into_iter()
        .map(|c| col(c).sort(true, true))
        .collect();
    let batches = result.sort(order)?.collect().await?;
    let mut csv = Vec::new();
    let mut writer = WriterBuilder::new().with_header(true).build(&mut csv);
    for batch in &batches {
        writer.write(batch)?;
    }
    drop(writer);
    Ok(csv)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match pipeline(&args).await {
        Ok(csv) => {
            print!("{}", String::from_utf8_lossy(&csv));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("batch_pipeline: {error}");
            ExitCode::FAILURE
        }
    }
}
