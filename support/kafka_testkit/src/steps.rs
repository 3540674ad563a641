//! Checks the Kafka katas' step tests share: what their step 1 (creating the clients)
//! must do, tested by behaviour on a broker, never by reading the client's settings.
//!
//! Each check fails with a message that says which setting the behaviour points to.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{Offset, TopicPartitionList};

use crate::Broker;

/// How long a step's producer has to show what it does on the check's own mock cluster.
const PRODUCER_CHECK: Duration = Duration::from_secs(15);

/// Fails unless a commit made through `consumer` (offset 1 of partition 0 of `topic`)
/// shows up under `group` on the broker: the consumer belongs to that group.
pub async fn assert_commits_as_group<C: Consumer>(
    broker: &Broker,
    consumer: &C,
    group: &str,
    topic: &str,
) {
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(topic, 0, Offset::Offset(1))
        .unwrap_or_else(|e| panic!("building the offsets to commit: {e}"));
    consumer
        .commit(&offsets, CommitMode::Sync)
        .unwrap_or_else(|e| panic!("committing offset 1 of {topic}/0 through your consumer: {e}"));
    let committed = committed(broker, group, topic).await;
    assert!(
        committed == BTreeMap::from([(0, 1)]),
        "a commit through your consumer should be group {group}'s (group.id), \
         but that group has {committed:?} on {topic}"
    );
}

/// Fails if `group` committed anything on `topic`. Call it after the consumer read
/// records and was dropped: with `enable.auto.commit` on, closing it commits.
pub async fn assert_nothing_committed(broker: &Broker, group: &str, topic: &str) {
    let committed = committed(broker, group, topic).await;
    assert!(
        committed.is_empty(),
        "nothing may be committed before the step that commits (enable.auto.commit = false), \
         but group {group} committed {committed:?} on {topic}"
    );
}

async fn committed(broker: &Broker, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    broker
        .committed_offsets(group, topic)
        .await
        .unwrap_or_else(|e| panic!("reading the offsets of group {group} on {topic}: {e:#}"))
}

/// Fails unless the producer `create` makes (given a bootstrap address) is idempotent.
///
/// An idempotent producer asks the broker for a producer id before it sends anything
/// (its retries are then numbered and never duplicated). The check gives `create` a
/// mock cluster of its own that refuses producer ids: an idempotent producer cannot
/// deliver there, a plain one delivers at once.
pub async fn assert_idempotent<E: std::fmt::Display>(
    create: impl FnOnce(&str) -> Result<FutureProducer, E>,
) {
    let cluster = MockCluster::new(1)
        .unwrap_or_else(|e| panic!("starting a mock cluster for the idempotence check: {e}"));
    let topic = "idempotence-check";
    cluster
        .create_topic(topic, 1, 1)
        .unwrap_or_else(|e| panic!("creating {topic} on the check's mock cluster: {e}"));
    cluster.request_errors(
        RDKafkaApiKey::InitProducerId,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED; 100],
    );
    let producer = create(&cluster.bootstrap_servers())
        .unwrap_or_else(|e| panic!("creating the clients for the idempotence check: {e}"));
    let sent = tokio::time::timeout(
        PRODUCER_CHECK,
        producer.send(
            FutureRecord::<str, str>::to(topic).payload("x"),
            PRODUCER_CHECK,
        ),
    )
    .await;
    if let Ok(Ok(_)) = sent {
        panic!(
            "your producer delivered to a broker that refuses producer ids, so it never asked \
             for one: it is not idempotent (enable.idempotence = true)"
        );
    }
    drop(producer);
}

#[cfg(test)]
mod tests {
    use rdkafka::ClientConfig;

    use super::*;

    fn producer(bootstrap: &str, idempotent: bool) -> Result<FutureProducer, String> {
        ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("enable.idempotence", idempotent.to_string())
            .create()
            .map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn an_idempotent_producer_passes() {
        assert_idempotent(|b| producer(b, true)).await;
    }

    #[tokio::test]
    #[should_panic(expected = "it is not idempotent")]
    async fn a_plain_producer_fails() {
        assert_idempotent(|b| producer(b, false)).await;
    }
}
