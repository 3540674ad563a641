//! The batch pipeline, CSV → Parquet, as a command.
//!
//! ```text
//! cargo run --release -p solutions --bin batch_etl -- \
//!     --customers fixtures/batch/customers.csv --orders fixtures/batch/orders.csv --output /tmp/customer_summary
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Reads customers and orders CSV, cleans, joins and aggregates them per customer,
/// and replaces OUTPUT with the Parquet result (atomically: a failure leaves it as it was).
#[derive(Parser)]
#[command(version, long_about = None)]
struct Args {
    /// customers.csv: customer_id,name,email,city,signup_date
    #[arg(long)]
    customers: PathBuf,
    /// orders.csv: order_id,customer_id,product,quantity,amount,order_date,status
    #[arg(long)]
    orders: PathBuf,
    /// Output directory of Parquet files (replaced as a whole).
    #[arg(long)]
    output: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let started = Instant::now();
    match solutions::batch::run(&args.customers, &args.orders, &args.output).await {
        Ok(counts) => {
            println!(
                "batch_etl: {} customers, {} orders read; {} summary rows written to {} in {:.2?}",
                counts.customers_read,
                counts.orders_read,
                counts.rows_written,
                args.output.display(),
                started.elapsed()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("batch_etl: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
