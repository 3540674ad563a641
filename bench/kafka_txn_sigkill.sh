#!/usr/bin/env bash
# Does a transaction the broker acknowledged come back whole after a broker SIGKILL? A
# check of the Kafka broker itself, without the pipeline: run it before changing the
# Kafka version (scripts/kafka/pom.xml).
#
#   bench/kafka_txn_sigkill.sh [KILLS]     default: 10
#
# bench/kafka_txn_sigkill.java commits small transactions on a private scripts/kafka-local
# (BENCH_KAFKA_PORT, default 29093), SIGKILLs the broker KILLS times the moment a commit
# returns, restarts it on its data, and aborts its first transaction after each restart
# (as the pipeline does when its group lost its member with the broker). Then every
# acknowledged transaction must be visible read_committed, in full; exits 3 if not.
#
# Kafka 4.3.0 to 4.4.0 fail it, and `a_broker_killed_and_restarted_mid_run_loses_nothing`
# (solutions/tests/kafka_stream_chaos.rs) with them, now and then: the restarted broker
# first acts on its old metadata (leader and transaction coordinator of everything, as
# before the kill) until the controller fences its previous incarnation, 9 s later. The
# coordinator reloads the transaction in PrepareCommit, cannot reach its own listener
# yet, and when the fence leaves the partitions without a leader it takes them for
# deleted ("Couldn't find leader endpoint ... likely deleted already and hence can be
# skipped" in the broker log), writes CompleteCommit without a marker, and the next
# abort of this producer aborts the acknowledged records. Since KRaftMetadataCache went
# from Scala to Java in 4.3.0, a partition without a leader has no endpoint instead of
# "no node" (KAFKA-20734). 4.2.2 passes.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

kills=${1:-10}
port=${BENCH_KAFKA_PORT:-29093}
scripts/kafka-local up --port "$port" >&2
bench_on_exit "scripts/kafka-local down --port $port >&2"
# The pipeline's client, librdkafka, speaks version 1 of the transaction protocol (EndTxn
# v1); without this, the Java client would use version 2.
scripts/kafka-local tool org.apache.kafka.tools.FeatureCommand --bootstrap-server "127.0.0.1:$port" \
  downgrade --feature transaction.version=1 >&2
echo "== $kills broker SIGKILLs, each the moment a commit returned ($(bench_load))" >&2
scripts/kafka-local tool "$PWD/bench/kafka_txn_sigkill.java" "127.0.0.1:$port" "$kills" "$PWD/scripts/kafka-local" "$port"
