//! One retry policy for every Kafka client of the workspace.
//!
//! A freshly started broker answers `NotCoordinator` / `CoordinatorLoadInProgress` for
//! some seconds while it loads its internal topics; a topic just created is
//! `UnknownTopicOrPartition` or `LeaderNotAvailable` until its leader is elected; a
//! broker that restarts drops connections. Java clients and Spark retry these. Here,
//! [`retry`] (blocking calls) and [`retry_async`] retry them with exponential backoff
//! until a deadline, log each kind of condition once, and then fail with a short error
//! that says what was tried and what to check. Any other error fails at once.
//!
//! ```ignore
//! let committed = kafka_retry::retry("reading the committed offsets", kafka_retry::DEADLINE, || {
//!     consumer.committed_offsets(wanted.clone(), Duration::from_secs(10))
//! })?;
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// How long a client rides out a broker that is not ready before it gives up: a cold
/// broker loads its coordinators in a few seconds, a restart takes tens of seconds.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The first pause between two tries; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Is this what a broker answers while it starts, restarts, elects a leader or moves a
/// group coordinator — something that goes away by itself?
pub fn is_retriable(error: &KafkaError) -> bool {
    if let KafkaError::Transaction(e) = error {
        // librdkafka says which transactional errors may be retried; an abortable or
        // fatal one must not be, whatever its code.
        return e.is_retriable();
    }
    error.rdkafka_error_code().is_some_and(is_retriable_code)
}

/// The codes [`is_retriable`] retries.
pub fn is_retriable_code(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        code,
        NotCoordinator
            | CoordinatorLoadInProgress
            | CoordinatorNotAvailable
            | LeaderNotAvailable
            | NotLeaderForPartition
            | UnknownTopicOrPartition
            | UnknownLeaderEpoch
            | FencedLeaderEpoch
            | NotEnoughReplicas
            | NotEnoughReplicasAfterAppend
            | RequestTimedOut
            | NetworkException
            | RebalanceInProgress
            | NotController
            | BrokerTransportFailure
            | AllBrokersDown
            | OperationTimedOut
            | Resolve
            | WaitingForCoordinator
            | TimedOutQueue
            | InProgress
            | PreviousInProgress
            | KafkaStorageError
            | ConcurrentTransactions
            | UnstableOffsetCommit
    )
}

/// The error of an operation that kept failing with retriable errors until the deadline.
#[derive(Debug)]
pub struct GaveUp {
    pub what: String,
    pub tries: u32,
    pub waited: Duration,
    pub last: KafkaError,
}

impl fmt::Display for GaveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: the broker still answered \"{}\" after {} tries over {:.0} s; check that \
             it is up and reachable (scripts/kafka-local status) and that its address is right",
            self.what,
            self.last,
            self.tries,
            self.waited.as_secs_f64()
        )
    }
}

impl std::error::Error for GaveUp {}

/// Why an operation failed: a non-retriable error at once, or retriable ones until the
/// deadline.
#[derive(Debug)]
pub enum Error {
    Failed {
        what: String,
        error: Box<KafkaError>,
    },
    GaveUp(Box<GaveUp>),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Failed { what, error } => write!(f, "{what}: {error}"),
            Error::GaveUp(g) => g.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// The last error the broker answered.
    pub fn kafka(&self) -> &KafkaError {
        match self {
            Error::Failed { error, .. } => error,
            Error::GaveUp(g) => &g.last,
        }
    }
}

/// Tracks the tries of one operation: backoff, deadline, one log line per kind.
struct Attempts<'a> {
    what: &'a str,
    started: Instant,
    deadline: Duration,
    backoff: Duration,
    tries: u32,
    logged: BTreeSet<String>,
}

impl<'a> Attempts<'a> {
    fn new(what: &'a str, deadline: Duration) -> Self {
        Attempts {
            what,
            started: Instant::now(),
            deadline,
            backoff: FIRST_BACKOFF,
            tries: 0,
            logged: BTreeSet::new(),
        }
    }

    /// After a failed try: how long to wait before the next, or the error to return.
    fn next_pause(&mut self, error: KafkaError) -> Result<Duration, Error> {
        self.tries += 1;
        if !is_retriable(&error) {
            return Err(Error::Failed {
                what: self.what.to_string(),
                error: Box::new(error),
            });
        }
        let waited = self.started.elapsed();
        if waited + self.backoff > self.deadline {
            return Err(Error::GaveUp(Box::new(GaveUp {
                what: self.what.to_string(),
                tries: self.tries,
                waited,
                last: error,
            })));
        }
        let kind = error
            .rdkafka_error_code()
            .map_or_else(|| error.to_string(), |c| format!("{c:?}"));
        if self.logged.insert(kind.clone()) {
            tracing::warn!(
                operation = self.what,
                condition = %kind,
                "the broker is not ready; retrying with backoff for up to {} s",
                self.deadline.as_secs()
            );
        }
        let pause = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        Ok(pause)
    }
}

/// Runs `op` until it succeeds, fails with a non-retriable error, or `deadline` passes.
/// Blocks the thread between tries: for blocking rdkafka calls.
pub fn retry<T>(
    what: &str,
    deadline: Duration,
    mut op: impl FnMut() -> Result<T, KafkaError>,
) -> Result<T, Error> {
    let mut attempts = Attempts::new(what, deadline);
    loop {
        match op() {
            Ok(value) => return Ok(value),
            Err(error) => std::thread::sleep(attempts.next_pause(error)?),
        }
    }
}

/// [`retry`] for futures: sleeps with tokio between tries.
pub async fn retry_async<T, F, Fut>(what: &str, deadline: Duration, mut op: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, KafkaError>>,
{
    let mut attempts = Attempts::new(what, deadline);
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(error) => tokio::time::sleep(attempts.next_pause(error)?).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coordinator_loading() -> KafkaError {
        KafkaError::MetadataFetch(RDKafkaErrorCode::CoordinatorLoadInProgress)
    }

    #[test]
    fn retries_a_loading_coordinator_until_it_answers() {
        let mut calls = 0;
        let value = retry("reading offsets", Duration::from_secs(5), || {
            calls += 1;
            if calls < 3 {
                Err(coordinator_loading())
            } else {
                Ok(42)
            }
        })
        .expect("the third try succeeds");
        assert_eq!((value, calls), (42, 3));
    }

    #[test]
    fn fails_at_once_on_an_error_that_will_not_go_away() {
        let mut calls = 0;
        let error = retry(
            "reading offsets",
            Duration::from_secs(5),
            || -> Result<(), _> {
                calls += 1;
                Err(KafkaError::MetadataFetch(
                    RDKafkaErrorCode::TopicAuthorizationFailed,
                ))
            },
        )
        .unwrap_err();
        assert_eq!(calls, 1);
        assert!(matches!(error, Error::Failed { .. }), "{error}");
    }

    #[test]
    fn gives_up_at_the_deadline_with_a_plain_message() {
        let started = Instant::now();
        let error = retry(
            "reading offsets",
            Duration::from_millis(500),
            || -> Result<(), _> { Err(KafkaError::OffsetFetch(RDKafkaErrorCode::NotCoordinator)) },
        )
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        let text = error.to_string();
        assert!(
            text.starts_with("reading offsets: the broker still answered")
                && text.contains("tries"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn the_async_form_retries_too() {
        let mut calls = 0;
        let value = retry_async("committing", Duration::from_secs(5), || {
            calls += 1;
            let outcome = if calls < 2 {
                Err(coordinator_loading())
            } else {
                Ok("done")
            };
            async move { outcome }
        })
        .await
        .expect("the second try succeeds");
        assert_eq!(value, "done");
    }
}
