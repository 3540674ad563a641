//! Which Kafka broker the katas use, and how to say so in one line.
//!
//! The rule, in this order:
//! 1. `KAFKA_BOOTSTRAP_SERVERS` if set: a broker you started (`scripts/kafka-local up`,
//!    `docker compose up -d`, CI);
//! 2. else a throwaway Apache Kafka container (testcontainers) when a Docker daemon
//!    answers a ping within [`DOCKER_PING_TIMEOUT`];
//! 3. else librdkafka's embedded mock cluster: no install, no network.
//!
//! `KATA_KAFKA=env|docker|mock` forces one of them.
//!
//! This crate only decides and describes; `kafka_testkit` starts what it chose (the
//! tests and the grader), the launcher shows the description. It has no dependencies so
//! that the launcher stays light.

use std::fmt;
use std::time::Duration;

/// The variable naming an external broker.
pub const BOOTSTRAP_ENV: &str = "KAFKA_BOOTSTRAP_SERVERS";
/// The variable that forces a choice: `env`, `docker` or `mock`.
pub const FORCE_ENV: &str = "KATA_KAFKA";
/// What the reference programs take as `--bootstrap` to start their own mock cluster.
pub const MOCK_BOOTSTRAP: &str = "mock";
/// The Apache Kafka image tag of the Docker path (`apache/kafka`, the JVM image, the
/// same as docker-compose.yml and scripts/kafka-local, whose pom.xml says why 4.2.2).
pub const KAFKA_IMAGE_TAG: &str = "4.2.2";
/// The rule in one line, for help texts.
pub const RULE: &str = "KAFKA_BOOTSTRAP_SERVERS, else a Docker container when Docker answers, \
     else librdkafka's embedded mock cluster (KATA_KAFKA=env|docker|mock forces one)";
/// How long the Docker daemon has to answer `GET /_ping` before the mock is chosen.
pub const DOCKER_PING_TIMEOUT: Duration = Duration::from_millis(500);

/// Which kind of broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// An external broker named by `KAFKA_BOOTSTRAP_SERVERS`.
    Env,
    /// An Apache Kafka container started with testcontainers.
    Docker,
    /// librdkafka's embedded mock cluster.
    Mock,
}

impl fmt::Display for BrokerKind {
    /// The `KATA_KAFKA` value that forces this kind.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BrokerKind::Env => "env",
            BrokerKind::Docker => "docker",
            BrokerKind::Mock => "mock",
        })
    }
}

/// The broker chosen, before anything is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The chosen kind.
    pub kind: BrokerKind,
    /// `KAFKA_BOOTSTRAP_SERVERS` (set for [`BrokerKind::Env`]).
    pub servers: Option<String>,
    /// Whether `KATA_KAFKA` forced it.
    pub forced: bool,
}

impl Choice {
    /// One line for people: which broker and how to get another.
    pub fn describe(&self) -> String {
        let what = match (self.kind, &self.servers) {
            (BrokerKind::Env, Some(servers)) => format!("{BOOTSTRAP_ENV}={servers}"),
            (BrokerKind::Env, None) => format!("{BOOTSTRAP_ENV} (not set)"),
            (BrokerKind::Docker, _) => format!(
                "a throwaway apache/kafka:{KAFKA_IMAGE_TAG} container (testcontainers; Docker answers)"
            ),
            (BrokerKind::Mock, _) if self.forced => "librdkafka's embedded mock cluster".into(),
            (BrokerKind::Mock, _) => format!(
                "librdkafka's embedded mock cluster ({BOOTSTRAP_ENV} not set; \
                 `scripts/kafka-local up` starts a real broker)"
            ),
        };
        if self.forced {
            format!("{what} (forced by {FORCE_ENV}={})", self.kind)
        } else {
            what
        }
    }

    /// The `--bootstrap` of a program started on its own (the reference pipelines, the
    /// producer): the servers, or [`MOCK_BOOTSTRAP`] for a mock cluster of its own.
    pub fn bootstrap_arg(&self) -> &str {
        match (self.kind, &self.servers) {
            (BrokerKind::Env, Some(servers)) => servers,
            _ => MOCK_BOOTSTRAP,
        }
    }
}

/// Why no broker could be chosen (a `KATA_KAFKA` that makes no sense).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChoiceError(String);

impl fmt::Display for ChoiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ChoiceError {}

/// The broker for the tests and the grader, from the environment (pings Docker only
/// when neither variable decides).
pub fn choose() -> Result<Choice, ChoiceError> {
    decide(
        var(BOOTSTRAP_ENV).as_deref(),
        var(FORCE_ENV).as_deref(),
        || docker_answers(DOCKER_PING_TIMEOUT),
    )
}

/// The rule without probing Docker: what the environment alone decides
/// (`KATA_KAFKA=docker` stays Docker). For a build script, which must not depend on
/// whether a daemon happens to answer.
pub fn choose_without_docker() -> Result<Choice, ChoiceError> {
    decide(
        var(BOOTSTRAP_ENV).as_deref(),
        var(FORCE_ENV).as_deref(),
        || false,
    )
}

/// The broker of programs started on their own (the reference pipelines, the
/// producer): `KAFKA_BOOTSTRAP_SERVERS`, else a mock cluster of their own
/// ([`Choice::bootstrap_arg`]). They cannot share the tests' container, so
/// `KATA_KAFKA=docker` is an error here.
pub fn choose_for_programs() -> Result<Choice, ChoiceError> {
    let choice = choose_without_docker()?;
    if choice.kind == BrokerKind::Docker {
        return Err(ChoiceError(format!(
            "{FORCE_ENV}=docker: a program started on its own cannot use the tests' container; \
             set {BOOTSTRAP_ENV} to a broker, or unset {FORCE_ENV} for a mock cluster"
        )));
    }
    Ok(choice)
}

/// The rule itself, on given values: `servers` is `KAFKA_BOOTSTRAP_SERVERS`, `forced`
/// is `KATA_KAFKA` (blank values count as unset); `docker_answers` is asked only when
/// the rule gets that far.
pub fn decide(
    servers: Option<&str>,
    forced: Option<&str>,
    docker_answers: impl FnOnce() -> bool,
) -> Result<Choice, ChoiceError> {
    let servers = servers
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let forced = forced.map(str::trim).filter(|s| !s.is_empty());
    let choice = |kind, forced| Choice {
        kind,
        servers: servers.clone(),
        forced,
    };
    Ok(match forced {
        Some("env") if servers.is_none() => {
            return Err(ChoiceError(format!(
                "{FORCE_ENV}=env but {BOOTSTRAP_ENV} is not set: set it to your broker, \
                 e.g. {BOOTSTRAP_ENV}=127.0.0.1:9092"
            )));
        }
        Some("env") => choice(BrokerKind::Env, true),
        Some("docker") => choice(BrokerKind::Docker, true),
        Some("mock") => choice(BrokerKind::Mock, true),
        Some(other) => {
            return Err(ChoiceError(format!(
                "{FORCE_ENV}={other}: expected env, docker or mock"
            )));
        }
        None if servers.is_some() => choice(BrokerKind::Env, false),
        None if docker_answers() => choice(BrokerKind::Docker, false),
        None => choice(BrokerKind::Mock, false),
    })
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Whether a Docker daemon answers `GET /_ping` within `timeout` (DOCKER_HOST's
/// `unix://` or `tcp://` address, else `/var/run/docker.sock`). Only a quick socket
/// exchange: with no daemon it returns false at once.
pub fn docker_answers(timeout: Duration) -> bool {
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    if let Some(addr) = host.strip_prefix("tcp://") {
        use std::net::ToSocketAddrs;
        let Some(addr) = addr.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
            return false;
        };
        let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, timeout) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(timeout));
        let _ = stream.set_write_timeout(Some(timeout));
        docker_ping(&mut stream).unwrap_or(false)
    } else {
        #[cfg(unix)]
        {
            let path = host
                .strip_prefix("unix://")
                .unwrap_or("/var/run/docker.sock");
            let Ok(mut stream) = std::os::unix::net::UnixStream::connect(path) else {
                return false;
            };
            let _ = stream.set_read_timeout(Some(timeout));
            let _ = stream.set_write_timeout(Some(timeout));
            docker_ping(&mut stream).unwrap_or(false)
        }
        #[cfg(not(unix))]
        false
    }
}

fn docker_ping(stream: &mut (impl std::io::Read + std::io::Write)) -> std::io::Result<bool> {
    stream.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")?;
    let mut response = [0u8; 64];
    let n = stream.read(&mut response)?;
    let head = String::from_utf8_lossy(&response[..n]);
    Ok(head.starts_with("HTTP/1.") && head.contains(" 200"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(servers: Option<&str>, forced: Option<&str>, docker: bool) -> BrokerKind {
        decide(servers, forced, || docker).unwrap().kind
    }

    #[test]
    fn the_environment_then_docker_then_the_mock() {
        let servers = Some("127.0.0.1:9092");
        assert_eq!(kind(servers, None, true), BrokerKind::Env);
        assert_eq!(kind(None, None, true), BrokerKind::Docker);
        assert_eq!(kind(None, None, false), BrokerKind::Mock);
        assert_eq!(kind(Some("  "), Some(""), false), BrokerKind::Mock);
    }

    #[test]
    fn kata_kafka_forces_one() {
        let servers = Some("127.0.0.1:9092");
        assert_eq!(kind(servers, Some("mock"), true), BrokerKind::Mock);
        assert_eq!(kind(servers, Some("docker"), false), BrokerKind::Docker);
        assert_eq!(kind(servers, Some(" env "), true), BrokerKind::Env);
        let unset = decide(None, Some("env"), || true).unwrap_err();
        assert!(
            unset
                .to_string()
                .contains("KAFKA_BOOTSTRAP_SERVERS is not set")
        );
        let nonsense = decide(servers, Some("kafka"), || true).unwrap_err();
        assert_eq!(
            nonsense.to_string(),
            "KATA_KAFKA=kafka: expected env, docker or mock"
        );
    }

    #[test]
    fn docker_is_asked_only_when_nothing_else_decides() {
        let asked = std::cell::Cell::new(false);
        let ask = || {
            asked.set(true);
            true
        };
        decide(Some("b:9092"), None, ask).unwrap();
        assert!(
            !asked.get(),
            "a broker in the environment needs no Docker ping"
        );
    }

    #[test]
    fn one_line_each_and_the_bootstrap_of_a_program() {
        let env = decide(Some("127.0.0.1:9092"), None, || false).unwrap();
        assert_eq!(env.describe(), "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092");
        assert_eq!(env.bootstrap_arg(), "127.0.0.1:9092");
        let mock = decide(None, None, || false).unwrap();
        assert!(
            mock.describe()
                .starts_with("librdkafka's embedded mock cluster (")
        );
        assert_eq!(mock.bootstrap_arg(), "mock");
        let forced = decide(Some("127.0.0.1:9092"), Some("mock"), || true).unwrap();
        assert_eq!(
            forced.describe(),
            "librdkafka's embedded mock cluster (forced by KATA_KAFKA=mock)"
        );
        assert_eq!(forced.bootstrap_arg(), "mock");
        for choice in [env, mock, forced] {
            assert!(!choice.describe().contains('\n'));
        }
    }

    #[test]
    fn kinds_print_as_kata_kafka_values() {
        let names: Vec<String> = [BrokerKind::Env, BrokerKind::Docker, BrokerKind::Mock]
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names, ["env", "docker", "mock"]);
    }

    #[test]
    fn the_docker_check_is_quick_whatever_the_answer() {
        let started = std::time::Instant::now();
        let _ = docker_answers(DOCKER_PING_TIMEOUT);
        assert!(started.elapsed() < DOCKER_PING_TIMEOUT * 3);
    }
}
