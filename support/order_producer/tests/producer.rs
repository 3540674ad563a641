//! The producer against the test broker of `kafka_testkit` (the mock by default, a
//! real broker with `KAFKA_BOOTSTRAP_SERVERS`).

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use fixtures::events::{DirtyOptions, EventGenerator, GeneratedCounts};
use kafka_testkit::{broker, unique_name};
use order_producer::{Args, Mode, produce};
use rdkafka::config::ClientConfig;

const START: &str = "2026-11-25T14:00:00Z";

fn args(topic: &str, extra: &[&str]) -> Args {
    let mut argv = vec![
        "order_producer",
        "--topic",
        topic,
        "--seed",
        "7",
        "--start",
        START,
    ];
    argv.extend_from_slice(extra);
    Args::parse_from(argv)
}

fn closed_port() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

#[tokio::test]
async fn burst_delivers_every_record_and_counts_each_kind() -> anyhow::Result<()> {
    let broker = broker().await?;
    let topic = unique_name("orders");
    broker.create_topic(&topic, 3).await?;
    let args = args(
        &topic,
        &[
            "--mode",
            "burst",
            "--count",
            "20000",
            "--rate",
            "100",
            "--late-fraction",
            "0.05",
            "--invalid-fraction",
            "0.05",
            "--malformed-fraction",
            "0.02",
        ],
    );
    let summary = produce(broker.client_config(), &args).await?;

    // The same generator, run here, says what must have been sent.
    let dirty = DirtyOptions {
        late_fraction: 0.05,
        invalid_fraction: 0.05,
        malformed_fraction: 0.02,
    };
    let start = START.parse()?;
    let expected = EventGenerator::new(7, start, 100.0, dirty)?.generate(20_000);
    assert_eq!(summary.mode, Mode::Burst);
    assert_eq!(summary.generated, GeneratedCounts::of(&expected));
    assert!(summary.nothing_lost(), "{}", summary.report());
    assert!(summary.generated.malformed > 0 && summary.generated.late > 0);
    assert!(!summary.interrupted);

    let consumed = broker
        .consume(&topic, 20_000, Duration::from_secs(60))
        .await?;
    assert_eq!(consumed.len(), 20_000);
    let sent: HashSet<(Option<Vec<u8>>, Vec<u8>)> = expected
        .into_iter()
        .map(|r| (r.key.map(String::into_bytes), r.payload))
        .collect();
    let got: HashSet<(Option<Vec<u8>>, Vec<u8>)> = consumed
        .into_iter()
        .map(|r| (r.key, r.payload.unwrap_or_default()))
        .collect();
    assert_eq!(sent.len(), 20_000, "generated records are distinct");
    assert!(
        sent == got,
        "the topic does not hold exactly the generated records"
    );
    Ok(())
}

#[tokio::test]
async fn continuous_mode_keeps_to_the_rate() -> anyhow::Result<()> {
    let broker = broker().await?;
    let topic = unique_name("orders");
    broker.create_topic(&topic, 1).await?;
    let args = args(
        &topic,
        &["--mode", "continuous", "--rate", "200", "--count", "100"],
    );
    let started = Instant::now();
    let summary = produce(broker.client_config(), &args).await?;
    let took = started.elapsed();
    assert!(summary.nothing_lost(), "{}", summary.report());
    assert_eq!(summary.delivered.total(), 100);
    // 100 events at 200/s: the last one leaves at 0.495 s.
    assert!(
        took >= Duration::from_millis(490),
        "too fast for the rate: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "too slow: {took:?}");
    Ok(())
}

#[tokio::test]
async fn a_broker_that_is_down_fails_within_seconds() {
    let address = closed_port();
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &address);
    let started = Instant::now();
    let err = produce(
        config,
        &args("orders", &["--mode", "burst", "--count", "10"]),
    )
    .await
    .expect_err("nothing listens there");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let err = format!("{err:#}");
    assert!(
        err.contains(&format!("no Kafka broker at {address}")),
        "{err}"
    );
}

#[tokio::test]
async fn bad_arguments_are_refused_before_anything_is_sent() {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", closed_port());
    let err = produce(
        config,
        &args(
            "orders",
            &["--late-fraction", "0.7", "--invalid-fraction", "0.7"],
        ),
    )
    .await
    .expect_err("fractions above 1");
    assert!(format!("{err:#}").contains("must not exceed 1"), "{err:#}");
    assert!(Args::try_parse_from(["order_producer", "--mode", "sometimes"]).is_err());
    assert!(Args::try_parse_from(["order_producer", "--set", "linger.ms"]).is_err());
}

/// The binary itself, as a learner runs it, against the test broker (the mock cluster
/// listens on a real 127.0.0.1 port, so another process can reach it).
#[tokio::test]
async fn the_binary_prints_a_json_summary_and_fails_clearly_on_a_down_broker() -> anyhow::Result<()>
{
    let broker = broker().await?;
    let topic = unique_name("orders");
    broker.create_topic(&topic, 2).await?;
    let exe = env!("CARGO_BIN_EXE_order_producer");
    let bootstrap = broker.bootstrap_servers().to_string();
    let run_topic = topic.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(exe)
            .args([
                "--bootstrap",
                &bootstrap,
                "--topic",
                &run_topic,
                "--mode",
                "burst",
            ])
            .args(["--count", "3000", "--seed", "9", "--start", START])
            .args(["--malformed-fraction", "0.1", "--summary-json"])
            .output()
    })
    .await??;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8(output.stdout)?;
    let summary: serde_json::Value = serde_json::from_str(stdout.trim())
        .map_err(|e| anyhow::anyhow!("{e}: stdout was {stdout:?}"))?;
    assert_eq!(summary["generated"], summary["delivered"], "{summary}");
    assert_eq!(summary["failed"]["malformed"], 0);
    let generated = &summary["generated"];
    let total: u64 = ["valid", "late", "invalid", "malformed"]
        .iter()
        .map(|k| generated[k].as_u64().unwrap())
        .sum();
    assert_eq!(total, 3000, "{summary}");
    assert!(generated["malformed"].as_u64().unwrap() > 200, "{summary}");
    assert!(stderr.contains("events/s"), "{stderr}");
    assert_eq!(
        broker
            .consume(&topic, 3000, Duration::from_secs(30))
            .await?
            .len(),
        3000
    );

    let address = closed_port();
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(exe)
            .args(["--bootstrap", &address, "--mode", "burst", "--count", "10"])
            .output()
    })
    .await??;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(stderr.contains("no Kafka broker at 127.0.0.1:"), "{stderr}");
    Ok(())
}
