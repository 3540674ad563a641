//! One Kafka broker for every Kafka test of the workspace, and the few operations
//! those tests need around it (topics, producing known records, consuming with a
//! deadline, reading committed offsets).
//!
//! The broker is chosen once per test process ([`broker`]) by the rule of the
//! `kafka_choice` crate, which the launcher describes with the same words:
//! 1. `KAFKA_BOOTSTRAP_SERVERS` if set: a broker you started (`scripts/kafka-local up`,
//!    `docker compose up -d`, CI). It is checked with a metadata request; a broker
//!    that is down fails every test within seconds with a message saying what to do.
//! 2. A testcontainers Apache Kafka (KRaft, image tag [`KAFKA_IMAGE_TAG`]) when a
//!    Docker daemon answers a ping within [`DOCKER_PING_TIMEOUT`] (the Docker path has
//!    not been run against a Docker engine yet).
//! 3. librdkafka's embedded mock cluster (`rdkafka::mocking::MockCluster`): no
//!    install, no network, in the test process.
//!
//! `KATA_KAFKA=env|docker|mock` forces one of them.
//!
//! Every test uses its own topics and group ids ([`unique_name`]), so tests of one
//! process share the broker without seeing each other's data and need no serialising.
//!
//! Besides [`broker`]: [`Broker::connect`] (an external broker at an address, checked),
//! [`Broker::start_mock`], [`Broker::start_docker`] and [`Broker::consumer_config`].
//! [`Broker::consume`] assigns the partitions instead of subscribing (no 3 s group
//! join), and unassigns before the consumer drops.
//!
//! A test that kills or restarts the broker starts its own with
//! [`local_broker::LocalBroker`] (`scripts/kafka-local` on free ports).
//!
//! For kata authors: the mock has no CreateTopics (use [`Broker::create_topic`], not
//! your own admin client), and keeps at most 5 MiB per partition (see below): keep a
//! test's data under that on each partition, or compress.
//!
//! A kata test:
//!
//! ```ignore
//! let broker = kafka_testkit::broker().await?;
//! let input = kafka_testkit::unique_name("orders");
//! broker.create_topic(&input, 3).await?;
//! let records = EventGenerator::new(1, start, 100.0, DirtyOptions::clean())?.generate(1_000);
//! broker.produce_events(&input, &records).await?;
//! // ... run the step with broker.consumer_config(&unique_name("group")) / client_config() ...
//! let out = broker.consume(&output_topic, expected, Duration::from_secs(30)).await?;
//! let committed = broker.committed_offsets(&group, &input).await?;
//! ```
//!
//! Facts this crate is built around (measured with rdkafka 0.39 / librdkafka 2.12):
//! - the mock cluster keeps at most 5 MiB (and 100,000 batches) per partition and
//!   silently deletes the oldest batches beyond that (`rdkafka_mock.c`): 100,000
//!   uncompressed order events on 3 partitions lost a third of them. [`Broker::produce`]
//!   compresses with lz4 (100,000 events then fit) and [`Broker::consume`] fails,
//!   saying so, when a partition no longer starts at offset 0;
//! - a consumer-group join takes about 3 s, so [`Broker::consume`] assigns the
//!   partitions itself (no rebalance) while still using its own group id;
//! - a group consumer dropped without `unsubscribe()` holds its partitions for
//!   `session.timeout.ms` (45 s by default), so [`Broker::consumer_config`] sets a
//!   short session and the helpers unsubscribe/unassign before dropping;
//! - awaiting each send in turn costs `linger.ms` per message (3,000 sends: 16.8 s);
//!   [`Broker::produce`] keeps every send in flight and awaits them at the end (0.5 s).

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use rand::distr::{Alphanumeric, SampleString};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{OnceCell, oneshot};

pub mod local_broker;
pub mod steps;

pub use kafka_choice::{BrokerKind, DOCKER_PING_TIMEOUT, KAFKA_IMAGE_TAG};

/// How long a broker has to answer the first metadata request.
pub const BROKER_CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a created topic has to appear in the metadata.
pub const TOPIC_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running broker and what keeps it alive.
pub struct Broker {
    bootstrap: String,
    kind: BrokerKind,
    /// Requests to the thread that owns the mock cluster (mock only).
    mock: Option<std_mpsc::Sender<MockRequest>>,
    /// Topic creation (not on the mock: it has no CreateTopics) and metadata requests,
    /// shared with the blocking threads that wait for metadata.
    admin: Arc<AdminClient<DefaultClientContext>>,
    /// The producer of [`Broker::produce`], made at its first call (see [`Broker::producer`]).
    producer: OnceLock<FutureProducer>,
}

/// One record read back by [`Broker::consume`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
}

impl ConsumedRecord {
    fn of(message: &impl Message) -> ConsumedRecord {
        ConsumedRecord {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
        }
    }
}

/// [`broker`] for a test that needs a real one (kill -9, restarts, transactions the
/// mock does not keep): fails when it is the mock, which only `KATA_KAFKA=mock` can force
/// here, since such tests are ignored without a real broker.
pub async fn real_broker() -> anyhow::Result<&'static Broker> {
    let broker = broker().await?;
    anyhow::ensure!(
        broker.kind() != BrokerKind::Mock,
        "this test needs a real broker (KATA_KAFKA=mock forced the mock)"
    );
    Ok(broker)
}

/// The broker of this test process, chosen on first use (see the crate docs) and
/// announced once on stderr: `kafka_testkit: using <kind> broker at <addr>`.
///
/// If the choice fails (e.g. `KAFKA_BOOTSTRAP_SERVERS` names a broker that is down),
/// every call returns the same error at once instead of waiting again.
pub async fn broker() -> anyhow::Result<&'static Broker> {
    static BROKER: OnceCell<Result<Broker, String>> = OnceCell::const_new();
    let chosen = BROKER
        .get_or_init(|| async {
            match choose_broker().await {
                Ok(b) => {
                    eprintln!("kafka_testkit: using {} broker at {}", b.kind, b.bootstrap);
                    Ok(b)
                }
                Err(e) => Err(format!("{e:#}")),
            }
        })
        .await;
    chosen.as_ref().map_err(|e| anyhow!("{e}"))
}

/// `<prefix>-<random>`: a topic name or group id no other test uses.
pub fn unique_name(prefix: &str) -> String {
    let suffix = Alphanumeric.sample_string(&mut rand::rng(), 12);
    format!("{prefix}-{suffix}")
}

async fn choose_broker() -> anyhow::Result<Broker> {
    let choice = kafka_choice::choose()?;
    match (choice.kind, &choice.servers) {
        (BrokerKind::Env, Some(servers)) => Broker::connect(servers).await,
        (BrokerKind::Env, None) => bail!("{}", choice.describe()),
        (BrokerKind::Docker, _) => Broker::start_docker().await,
        (BrokerKind::Mock, _) => Broker::start_mock(),
    }
}

impl Broker {
    /// An external broker at `bootstrap_servers`, checked with a metadata request:
    /// a broker that is down gives an error within [`BROKER_CHECK_TIMEOUT`].
    pub async fn connect(bootstrap_servers: &str) -> anyhow::Result<Broker> {
        let broker = Broker::new(bootstrap_servers.to_string(), BrokerKind::Env, None)?;
        broker.check_alive().await?;
        Ok(broker)
    }

    /// A fresh mock cluster with one broker, owned by a dedicated thread.
    ///
    /// `MockCluster` holds a raw pointer and a client with a borrowed lifetime, so it
    /// is neither `Send` nor `Sync` and cannot sit in a `static`. A thread creates it,
    /// reports its bootstrap address and then serves topic-creation requests over a
    /// channel for as long as the process lives (the `Sender` in the static broker
    /// never drops). The mock's listeners run on librdkafka's own threads, so any
    /// client in any thread or runtime can use it.
    pub fn start_mock() -> anyhow::Result<Broker> {
        let (requests, incoming) = std_mpsc::channel::<MockRequest>();
        let (ready_tx, ready_rx) = std_mpsc::channel::<Result<String, String>>();
        std::thread::Builder::new()
            .name("kafka-mock-cluster".into())
            .spawn(move || {
                // The mock belongs to a client of its own (`test.mock.num.brokers`), so
                // that its group rebalance delay can be set: 0 instead of the 3 s of
                // Kafka's `group.initial.rebalance.delay.ms`, which every subscribing
                // consumer would otherwise wait before its first message.
                let owner: rdkafka::producer::BaseProducer = match ClientConfig::new()
                    .set("test.mock.num.brokers", "1")
                    .create()
                {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("{e}")));
                        return;
                    }
                };
                let client = rdkafka::producer::Producer::client(&owner);
                let Some(cluster) = client.mock_cluster() else {
                    let _ = ready_tx.send(Err("the client has no mock cluster".into()));
                    return;
                };
                // SAFETY: the handle's mock cluster lives as long as `owner`, which
                // outlives this call; the function only sets a default of the cluster.
                unsafe {
                    rdkafka::bindings::rd_kafka_mock_group_initial_rebalance_delay_ms(
                        rdkafka::bindings::rd_kafka_handle_mock_cluster(client.native_ptr()),
                        0,
                    );
                }
                let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                for request in incoming {
                    let result = cluster
                        .create_topic(&request.topic, request.partitions, 1)
                        .map_err(|e| format!("{e}"));
                    let _ = request.reply.send(result);
                }
            })
            .context("spawning the mock cluster thread")?;
        let bootstrap = ready_rx
            .recv()
            .context("the mock cluster thread died while starting")?
            .map_err(|e| anyhow!("starting librdkafka's mock cluster: {e}"))?;
        Broker::new(bootstrap, BrokerKind::Mock, Some(requests))
    }

    /// An Apache Kafka container (testcontainers), owned by a dedicated thread with its
    /// own runtime, removed when the process exits.
    ///
    /// The broker lives in a `static`, which is never dropped, so the container would
    /// outlive the tests. The thread keeps the container and its Docker client on one
    /// runtime that outlives every test's runtime, and an `atexit` hook asks it to
    /// remove the container when the test binary exits.
    pub async fn start_docker() -> anyhow::Result<Broker> {
        let (ready_tx, ready_rx) = oneshot::channel::<anyhow::Result<String>>();
        std::thread::Builder::new()
            .name("kafka-container".into())
            .spawn(move || docker::own_container(ready_tx))
            .context("spawning the Kafka container thread")?;
        let bootstrap = ready_rx
            .await
            .context("the Kafka container thread died while starting")??;
        let broker = Broker::new(bootstrap, BrokerKind::Docker, None)?;
        broker.check_alive().await?;
        Ok(broker)
    }

    fn new(
        bootstrap: String,
        kind: BrokerKind,
        mock: Option<std_mpsc::Sender<MockRequest>>,
    ) -> anyhow::Result<Broker> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &bootstrap);
        // Quiet librdkafka's own reconnect logging for a broker that is down: the
        // check below reports it once, clearly.
        config.set("log_level", "3");
        // Asking for a topic's metadata must not create it with the broker's defaults.
        config.set("allow.auto.create.topics", "false");
        let admin = Arc::new(
            config
                .create()
                .with_context(|| format!("creating a Kafka admin client for {bootstrap}"))?,
        );
        Ok(Broker {
            bootstrap,
            kind,
            mock,
            admin,
            producer: OnceLock::new(),
        })
    }

    async fn check_alive(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        let result = self.metadata(None, BROKER_CHECK_TIMEOUT).await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => Err(anyhow!(
                "no Kafka broker at {} — start one with `scripts/kafka-local up` or \
                 `docker compose up -d`, or unset KAFKA_BOOTSTRAP_SERVERS to use the \
                 embedded mock (metadata request failed after {:.1} s: {e:#})",
                self.bootstrap,
                started.elapsed().as_secs_f64()
            )),
        }
    }

    /// The `bootstrap.servers` of this broker.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// Which kind of broker this is.
    pub fn kind(&self) -> BrokerKind {
        self.kind
    }

    /// `bootstrap.servers` plus timeouts suited to tests (fail in seconds, not minutes).
    /// Valid for producers, consumers and admin clients alike.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap)
            .set("socket.connection.setup.timeout.ms", "5000")
            .set("reconnect.backoff.max.ms", "1000");
        config
    }

    /// [`Broker::client_config`] for a consumer in `group`: reads from the earliest
    /// offset, no auto-commit, and a short session (6 s, the broker's minimum) so that a
    /// consumer that goes away without leaving does not hold partitions for 45 s.
    pub fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut config = self.client_config();
        config
            .set("group.id", group)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "500");
        config
    }

    /// Creates `name` with `partitions` partitions (replication 1) and waits until the
    /// metadata shows all of them. Uses the admin API, or the mock cluster's own topic
    /// creation on the mock (which has no CreateTopics).
    pub async fn create_topic(&self, name: &str, partitions: i32) -> anyhow::Result<()> {
        ensure!(
            partitions > 0,
            "topic {name}: partitions = {partitions} must be > 0"
        );
        if let Some(mock) = &self.mock {
            let (reply, response) = oneshot::channel();
            mock.send(MockRequest {
                topic: name.to_string(),
                partitions,
                reply,
            })
            .map_err(|_| anyhow!("the mock cluster thread is gone"))?;
            response
                .await
                .context("the mock cluster thread dropped the request")?
                .map_err(|e| anyhow!("creating topic {name} on the mock cluster: {e}"))?;
        } else {
            let results = self
                .admin
                .create_topics(
                    &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
                    &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
                )
                .await
                .with_context(|| format!("creating topic {name} on {}", self.bootstrap))?;
            for result in results {
                if let Err((topic, code)) = result {
                    bail!("creating topic {topic} on {}: {code}", self.bootstrap);
                }
            }
        }
        self.wait_for_partitions(name, TOPIC_READY_TIMEOUT, Some(partitions))
            .await
            .map(|_| ())
    }

    /// Produces `(key, payload)` records to `topic`, all in flight at once (bounded
    /// by librdkafka's queue), and awaits every delivery at the end. Returns the
    /// `(partition, offset)` of each record, in input order; fails on the first
    /// delivery error, naming the record.
    pub async fn produce(
        &self,
        topic: &str,
        records: Vec<(Option<Vec<u8>>, Vec<u8>)>,
    ) -> anyhow::Result<Vec<(i32, i64)>> {
        let producer = self.producer()?;
        let total = records.len();
        let mut delivered: Vec<Option<(i32, i64)>> = vec![None; total];
        let mut in_flight = VecDeque::new();
        for (index, (key, payload)) in records.iter().enumerate() {
            let mut record = FutureRecord::to(topic).payload(payload);
            if let Some(key) = key {
                record = record.key(key);
            }
            loop {
                match producer.send_result(record) {
                    Ok(future) => {
                        in_flight.push_back((index, future));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // The local queue is full: wait for the oldest delivery.
                        record = back;
                        let Some((i, future)) = in_flight.pop_front() else {
                            bail!("producer queue full with nothing in flight");
                        };
                        delivered[i] = Some(delivery(topic, i, future.await)?);
                    }
                    Err((e, _)) => bail!("producing record {index} to {topic}: {e}"),
                }
            }
        }
        for (i, future) in in_flight {
            delivered[i] = Some(delivery(topic, i, future.await)?);
        }
        Ok(delivered.into_iter().flatten().collect())
    }

    /// The producer of [`Broker::produce`], one for the broker's lifetime: a new one per
    /// call cost its connection and, dropped, librdkafka's shutdown, some 50 ms each on
    /// the mock cluster, in every step test that produces its input.
    fn producer(&self) -> anyhow::Result<&FutureProducer> {
        if let Some(producer) = self.producer.get() {
            return Ok(producer);
        }
        let made: FutureProducer = self
            .client_config()
            .set("linger.ms", "5")
            // The mock cluster keeps at most 5 MiB per partition (see the crate docs):
            // compressed batches make 100,000 events fit; real brokers gain too.
            .set("compression.type", "lz4")
            .set("message.timeout.ms", "30000")
            .create()
            .context("creating a Kafka producer")?;
        // Another test's call may have made one meanwhile: that one is kept.
        Ok(self.producer.get_or_init(|| made))
    }

    /// [`Broker::produce`] for generated order records (key = `order_id`).
    pub async fn produce_events(
        &self,
        topic: &str,
        records: &[fixtures::events::GeneratedRecord],
    ) -> anyhow::Result<Vec<(i32, i64)>> {
        let records = records
            .iter()
            .map(|r| (r.key.clone().map(String::into_bytes), r.payload.clone()))
            .collect();
        self.produce(topic, records).await
    }

    /// Reads `topic` from the earliest offset of every partition with a group of its
    /// own until `expected` records arrived, or fails at `deadline` saying how many did.
    ///
    /// The partitions are assigned directly (no group join, which costs ~3 s) and
    /// unassigned before the consumer drops. The topic must exist (or appear before
    /// the deadline). Records of one partition come in offset order.
    pub async fn consume(
        &self,
        topic: &str,
        expected: usize,
        deadline: Duration,
    ) -> anyhow::Result<Vec<ConsumedRecord>> {
        let started = Instant::now();
        let partitions = self.wait_for_partitions(topic, deadline, None).await?;
        self.check_nothing_deleted(topic, partitions).await?;
        let consumer =
            self.reader_from_beginning("kafka-testkit-consume", topic, partitions, &[])?;
        let mut records = Vec::with_capacity(expected);
        let end = tokio::time::Instant::from_std(started + deadline);
        let outcome = loop {
            if records.len() >= expected {
                break Ok(());
            }
            match tokio::time::timeout_at(end, consumer.recv()).await {
                Err(_) => {
                    break Err(anyhow!(
                        "consumed {} of {expected} expected records from {topic} within {deadline:?}",
                        records.len()
                    ));
                }
                Ok(Err(e)) => break Err(anyhow!("consuming {topic}: {e}")),
                Ok(Ok(message)) => records.push(ConsumedRecord::of(&message)),
            }
        };
        let _ = consumer.unassign();
        outcome.map(|()| records)
    }

    /// A consumer with a group of its own (named after `prefix`), every partition of
    /// `topic` assigned from the earliest offset, `settings` on top of the usual ones.
    fn reader_from_beginning(
        &self,
        prefix: &str,
        topic: &str,
        partitions: i32,
        settings: &[(&str, &str)],
    ) -> anyhow::Result<StreamConsumer> {
        let mut config = self.consumer_config(&unique_name(prefix));
        config.set("fetch.wait.max.ms", "100");
        for (key, value) in settings {
            config.set(*key, *value);
        }
        let consumer: StreamConsumer = config.create().context("creating a Kafka consumer")?;
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions {
            assignment
                .add_partition_offset(topic, p, Offset::Beginning)
                .context("building the partition assignment")?;
        }
        consumer
            .assign(&assignment)
            .with_context(|| format!("assigning the {partitions} partitions of {topic}"))?;
        Ok(consumer)
    }

    /// Every record of `topic` that a `read_committed` consumer sees, from the earliest
    /// offset to the end of every partition (records of aborted transactions are
    /// skipped), or fails at `deadline`. Unlike [`Broker::consume`] it needs no expected
    /// count, so it also shows what was written too often.
    pub async fn consume_to_end(
        &self,
        topic: &str,
        deadline: Duration,
    ) -> anyhow::Result<Vec<ConsumedRecord>> {
        let started = Instant::now();
        let partitions = self.wait_for_partitions(topic, deadline, None).await?;
        let consumer = self.reader_from_beginning(
            "kafka-testkit-consume-to-end",
            topic,
            partitions,
            &[
                ("isolation.level", "read_committed"),
                ("enable.partition.eof", "true"),
            ],
        )?;
        let mut at_end = std::collections::BTreeSet::new();
        let mut records = Vec::new();
        let end = tokio::time::Instant::from_std(started + deadline);
        let outcome = loop {
            if at_end.len() as i32 >= partitions {
                break Ok(());
            }
            match tokio::time::timeout_at(end, consumer.recv()).await {
                Err(_) => {
                    break Err(anyhow!(
                        "reading {topic} to its end took over {deadline:?} ({} records, \
                         {} of {partitions} partitions at their end)",
                        records.len(),
                        at_end.len()
                    ));
                }
                Ok(Err(KafkaError::PartitionEOF(p))) => {
                    at_end.insert(p);
                }
                Ok(Err(e)) => break Err(anyhow!("consuming {topic}: {e}")),
                Ok(Ok(message)) => records.push(ConsumedRecord::of(&message)),
            }
        };
        let _ = consumer.unassign();
        outcome.map(|()| records)
    }

    /// The offsets `group` has committed on `topic`, by partition (partitions
    /// without a commit are absent). The topic must exist.
    pub async fn committed_offsets(
        &self,
        group: &str,
        topic: &str,
    ) -> anyhow::Result<BTreeMap<i32, i64>> {
        let partitions = self
            .wait_for_partitions(topic, Duration::from_secs(10), None)
            .await?;
        let consumer: BaseConsumer = self
            .consumer_config(group)
            .create()
            .context("creating a Kafka consumer to read committed offsets")?;
        let topic_owned = topic.to_string();
        let group_owned = group.to_string();
        let committed = tokio::task::spawn_blocking(move || {
            let mut list = TopicPartitionList::new();
            for p in 0..partitions {
                list.add_partition(&topic_owned, p);
            }
            consumer
                .committed_offsets(list, Duration::from_secs(10))
                .with_context(|| {
                    format!("reading the offsets group {group_owned} committed on {topic_owned}")
                })
        })
        .await
        .context("the committed-offsets task panicked")??;
        let mut offsets = BTreeMap::new();
        for element in committed.elements() {
            if let Offset::Offset(o) = element.offset() {
                offsets.insert(element.partition(), o);
            }
        }
        Ok(offsets)
    }

    /// Metadata of one topic (or of the cluster), off the async threads.
    async fn metadata(
        &self,
        topic: Option<&str>,
        timeout: Duration,
    ) -> anyhow::Result<Vec<(String, i32, Option<RDKafkaRespErr>)>> {
        let admin = Arc::clone(&self.admin);
        let topic = topic.map(str::to_string);
        tokio::task::spawn_blocking(move || {
            let metadata = admin
                .inner()
                .fetch_metadata(topic.as_deref(), Timeout::After(timeout))
                .map_err(anyhow::Error::from)?;
            Ok(metadata
                .topics()
                .iter()
                .map(|t| (t.name().to_string(), t.partitions().len() as i32, t.error()))
                .collect())
        })
        .await
        .context("the metadata task panicked")?
    }

    /// Fails if a partition of `topic` no longer starts at offset 0, i.e. the broker
    /// deleted records a test expects to read (the mock cluster does so silently past
    /// 5 MiB per partition).
    async fn check_nothing_deleted(&self, topic: &str, partitions: i32) -> anyhow::Result<()> {
        let admin = Arc::clone(&self.admin);
        let topic_owned = topic.to_string();
        let lows = tokio::task::spawn_blocking(move || {
            (0..partitions)
                .map(|p| {
                    admin
                        .inner()
                        .fetch_watermarks(&topic_owned, p, Duration::from_secs(10))
                        .map(|(low, _)| (p, low))
                        .with_context(|| format!("reading the offsets of {topic_owned}/{p}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .await
        .context("the watermark task panicked")??;
        if let Some((p, low)) = lows.into_iter().find(|(_, low)| *low > 0) {
            let why = if self.kind == BrokerKind::Mock {
                "librdkafka's mock cluster keeps at most 5 MiB per partition and drops the \
                 oldest batches silently: use more partitions, compression or fewer records, \
                 or a real broker (KAFKA_BOOTSTRAP_SERVERS)"
            } else {
                "the topic's retention removed them"
            };
            bail!(
                "topic {topic} partition {p} starts at offset {low}: the records before it \
                 were deleted ({why})"
            );
        }
        Ok(())
    }

    /// Polls the metadata until `topic` exists (with `want` partitions if given) and
    /// returns its partition count, or fails after `timeout`.
    async fn wait_for_partitions(
        &self,
        topic: &str,
        timeout: Duration,
        want: Option<i32>,
    ) -> anyhow::Result<i32> {
        let started = Instant::now();
        let mut last = String::from("no answer");
        while started.elapsed() < timeout {
            let left = timeout
                .saturating_sub(started.elapsed())
                .max(Duration::from_millis(100));
            match self
                .metadata(Some(topic), left.min(Duration::from_secs(5)))
                .await
            {
                Ok(topics) => match topics.into_iter().find(|(name, ..)| name == topic) {
                    Some((_, n, None)) if n > 0 && want.is_none_or(|w| n >= w) => return Ok(n),
                    Some((_, n, error)) => last = format!("{n} partitions, error {error:?}"),
                    None => last = "absent from the metadata".to_string(),
                },
                Err(e) => last = format!("{e:#}"),
            }
            // Poll again shortly: metadata propagation on a real broker takes a few ms.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "topic {topic} not ready on {} within {timeout:?}{} (last: {last})",
            self.bootstrap,
            want.map(|w| format!(" with {w} partitions"))
                .unwrap_or_default()
        )
    }
}

fn delivery(
    topic: &str,
    index: usize,
    result: Result<
        rdkafka::producer::future_producer::OwnedDeliveryResult,
        futures::channel::oneshot::Canceled,
    >,
) -> anyhow::Result<(i32, i64)> {
    match result {
        Ok(Ok(d)) => Ok((d.partition, d.offset)),
        Ok(Err((e, _))) => bail!("delivering record {index} to {topic}: {e}"),
        Err(_) => bail!("delivering record {index} to {topic}: the producer was dropped"),
    }
}

struct MockRequest {
    topic: String,
    partitions: i32,
    reply: oneshot::Sender<Result<(), String>>,
}

mod docker {
    //! The testcontainers path: a thread that owns the container and removes it at exit.

    use std::sync::Mutex;
    use std::sync::mpsc as std_mpsc;
    use std::time::Duration;

    use anyhow::Context;
    use testcontainers_modules::kafka::apache::{KAFKA_PORT, Kafka};
    use testcontainers_modules::testcontainers::ImageExt;
    use testcontainers_modules::testcontainers::runners::AsyncRunner;
    use tokio::sync::oneshot;

    use super::KAFKA_IMAGE_TAG;

    /// Sends a reply channel to the container thread, which removes the container
    /// and answers. Set once the container runs.
    static SHUTDOWN: Mutex<Option<std_mpsc::Sender<std_mpsc::Sender<()>>>> = Mutex::new(None);

    unsafe extern "C" {
        fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
    }

    extern "C" fn remove_container_at_exit() {
        let Some(shutdown) = SHUTDOWN.lock().ok().and_then(|mut s| s.take()) else {
            return;
        };
        let (done_tx, done_rx) = std_mpsc::channel();
        if shutdown.send(done_tx).is_ok() {
            // Bounded: never hang the exit of the test binary.
            let _ = done_rx.recv_timeout(Duration::from_secs(30));
        }
    }

    pub(super) fn own_container(ready: oneshot::Sender<anyhow::Result<String>>) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                let _ = ready.send(Err(anyhow::Error::from(e).context("building a runtime")));
                return;
            }
        };
        runtime.block_on(async move {
            let started = async {
                let container = Kafka::default()
                    .with_jvm_image()
                    .with_tag(KAFKA_IMAGE_TAG)
                    // Kafka 4 (KRaft only) wants node.id; the module sets broker.id.
                    .with_env_var("KAFKA_NODE_ID", "1")
                    .with_startup_timeout(Duration::from_secs(120))
                    .start()
                    .await
                    .with_context(|| {
                        format!("starting apache/kafka:{KAFKA_IMAGE_TAG} with testcontainers")
                    })?;
                let port = container
                    .get_host_port_ipv4(KAFKA_PORT)
                    .await
                    .context("reading the Kafka container's mapped port")?;
                anyhow::Ok((container, format!("127.0.0.1:{port}")))
            };
            let (container, bootstrap) = match started.await {
                Ok(c) => c,
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
            let (shutdown_tx, shutdown_rx) = std_mpsc::channel::<std_mpsc::Sender<()>>();
            if let Ok(mut slot) = SHUTDOWN.lock() {
                *slot = Some(shutdown_tx);
            }
            // SAFETY: registers a plain extern "C" fn with no captured state.
            unsafe {
                atexit(remove_container_at_exit);
            }
            let _ = ready.send(Ok(bootstrap));
            // Park until the process exits (the atexit hook asks for removal).
            let done = tokio::task::spawn_blocking(move || shutdown_rx.recv().ok())
                .await
                .ok()
                .flatten();
            let _ = container.rm().await;
            if let Some(done) = done {
                let _ = done.send(());
            }
        });
    }
}
