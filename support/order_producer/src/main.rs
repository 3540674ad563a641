//! `order_producer`: see the crate docs (`src/lib.rs`) and `--help`.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use order_producer::{Args, produce};
use rdkafka::config::ClientConfig;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &args.bootstrap);
    match runtime.block_on(produce(config, &args)) {
        Ok(summary) => {
            eprintln!("{}", summary.report());
            if args.summary_json {
                match serde_json::to_string(&summary) {
                    Ok(json) => println!("{json}"),
                    Err(e) => eprintln!("error: serialising the summary: {e}"),
                }
            }
            if summary.failed.total() > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
