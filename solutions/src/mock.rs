//! `--bootstrap mock` of the runnable pipelines: librdkafka's mock cluster in the
//! program's own process, with its topics and demo events, so that a pipeline runs with
//! no broker installed. (The tests start theirs through `kafka_testkit`; which broker a
//! run uses is `kafka_choice`'s rule, whose [`MOCK_BOOTSTRAP`] the launcher passes.)

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::{Context, Result};
use fixtures::events::GeneratedRecord;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DefaultProducerContext, FutureProducer, FutureRecord, Producer};

pub use kafka_choice::MOCK_BOOTSTRAP;

/// A running mock cluster; it stops when dropped.
pub type MockCluster = rdkafka::mocking::MockCluster<'static, DefaultProducerContext>;

/// Whether `--bootstrap` asks for a mock cluster of the program's own.
pub fn wanted(bootstrap: &str) -> bool {
    bootstrap == MOCK_BOOTSTRAP
}

/// A mock cluster of one broker with `topics` (name, partitions) created, and
/// `records` produced to `input` (key = `order_id`). Returns the cluster and how many
/// records were delivered.
pub async fn start(
    topics: &[(&str, i32)],
    input: &str,
    records: &[GeneratedRecord],
) -> Result<(MockCluster, usize)> {
    let cluster = MockCluster::new(1).context("starting librdkafka's mock cluster")?;
    for (topic, partitions) in topics {
        cluster
            .create_topic(topic, *partitions, 1)
            .with_context(|| format!("creating topic {topic} on the mock cluster"))?;
    }
    let sent = produce(&cluster.bootstrap_servers(), input, records).await?;
    Ok((cluster, sent))
}

/// Produces `records` to `topic`, every send in flight at once (when librdkafka's
/// queue is full, waits for the oldest), and returns how many were delivered.
async fn produce(bootstrap: &str, topic: &str, records: &[GeneratedRecord]) -> Result<usize> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()
        .context("creating the demo producer")?;
    let mut in_flight = VecDeque::new();
    let mut delivered = 0;
    for r in records {
        let mut record = FutureRecord::<str, [u8]>::to(topic).payload(&r.payload);
        if let Some(key) = &r.key {
            record = record.key(key.as_str());
        }
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    in_flight.push_back(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    let oldest = in_flight
                        .pop_front()
                        .context("librdkafka's queue is full with nothing in flight")?;
                    delivered += check(oldest.await)?;
                }
                Err((e, _)) => return Err(e).context("queueing a demo event"),
            }
        }
    }
    for delivery in in_flight {
        delivered += check(delivery.await)?;
    }
    producer
        .flush(Duration::from_secs(10))
        .context("flushing the demo producer")?;
    Ok(delivered)
}

fn check<E: std::error::Error + Send + Sync + 'static>(
    result: Result<rdkafka::producer::future_producer::OwnedDeliveryResult, E>,
) -> Result<usize> {
    result
        .context("a demo event was not delivered: the producer went away")?
        .map(|_| 1)
        .map_err(|(e, _)| e)
        .context("producing a demo event")
}
