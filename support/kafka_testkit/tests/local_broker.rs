//! The private broker of `kafka_testkit::local_broker`: started on free ports, killed
//! with SIGKILL and restarted with its data, stopped when dropped.

use std::time::Duration;

use kafka_testkit::local_broker::LocalBroker;
use kafka_testkit::{Broker, unique_name};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(real_broker),
    ignore = "needs a real broker (KAFKA_BOOTSTRAP_SERVERS or KATA_KAFKA=docker): it runs scripts/kafka-local"
)]
async fn a_private_broker_keeps_its_records_across_a_sigkill_restart() -> anyhow::Result<()> {
    let local = tokio::task::spawn_blocking(LocalBroker::start).await??;
    let bootstrap = local.bootstrap().to_string();
    let broker = Broker::connect(&bootstrap).await?;
    let topic = unique_name("restart");
    broker.create_topic(&topic, 2).await?;
    let records: Vec<_> = (0..200)
        .map(|i| {
            (
                Some(format!("k{i}").into_bytes()),
                format!("v{i}").into_bytes(),
            )
        })
        .collect();
    broker.produce(&topic, records).await?;

    let local = tokio::task::spawn_blocking(move || local.restart_kill().map(|()| local)).await??;
    assert_eq!(local.bootstrap(), bootstrap, "the restart keeps the port");

    let after = Broker::connect(&bootstrap).await?;
    let back = after.consume(&topic, 200, Duration::from_secs(30)).await?;
    let mut payloads: Vec<_> = back
        .into_iter()
        .filter_map(|r| String::from_utf8(r.payload?).ok())
        .collect();
    payloads.sort();
    let mut want: Vec<_> = (0..200).map(|i| format!("v{i}")).collect();
    want.sort();
    assert_eq!(
        payloads, want,
        "every record produced before the SIGKILL is there after it"
    );
    drop(after);
    drop(broker);
    tokio::task::spawn_blocking(move || drop(local)).await?;
    Ok(())
}
