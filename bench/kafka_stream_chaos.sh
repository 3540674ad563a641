#!/usr/bin/env bash
# kafka_stream --exactly-once under SIGKILLs, on a real broker: prints how many windows
# a read_committed reader saw exactly once, lost, duplicated or with wrong values.
#
#   bench/kafka_stream_chaos.sh [KILLS [RATE [MAX_EVENTS]]]     default: 20 1500 1000000
#
# The scenario is the CI test `solutions/tests/kafka_stream_chaos.rs` (4 kills there),
# run with the release binary: orders arrive at RATE a second on a 3-partition topic
# while the pipeline (micro-batches of 400) is killed with SIGKILL KILLS times, most
# kills at a random moment after a commit, every third during start-up or recovery, each
# followed by a restart; then a last run reads to the end. Every malformed payload must
# be in the dead-letter topic once as well. Exits non-zero if anything was lost,
# duplicated or wrong.
#
# Uses the broker at KAFKA_BOOTSTRAP_SERVERS, or starts scripts/kafka-local on
# BENCH_KAFKA_PORT (default 29092) and stops it at the end. BENCH_BIN_DIR=DIR uses the
# kafka_stream in DIR instead of building it.
#
#   bench/kafka_stream_chaos.sh --outage [EVENTS [BATCH]]     default: 1000000 20000
#
# runs the CI test of a broker outage instead (`a_broker_killed_and_restarted_mid_run_
# loses_nothing`, 40,000 orders there) on EVENTS orders: a private broker (scripts/
# kafka-local on free ports) is SIGKILLed and restarted after the first commit, and the
# pipeline (in the test's process, micro-batches of BATCH) must wait, reconnect and
# finish with every window once.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

if [ "${1:-}" = "--outage" ]; then
  export STREAM_OUTAGE_EVENTS=${2:-1000000} STREAM_OUTAGE_BATCH=${3:-20000}
  # Any value: it only tells the build that a real broker is there to test with.
  export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}
  echo "== broker outage, $STREAM_OUTAGE_EVENTS orders, micro-batches of $STREAM_OUTAGE_BATCH" >&2
  cargo test -q -p solutions --features kafka_stream --test kafka_stream_chaos -- \
    a_broker_killed_and_restarted_mid_run_loses_nothing --nocapture 2>&1 |
    grep -E "broker killed|exactly once|panicked|test result"
  exit "${PIPESTATUS[0]}"
fi

kills=${1:-20}
rate=${2:-1500}
max_events=${3:-1000000}

bench_broker
bench_binaries -p solutions --bin kafka_stream
export KAFKA_STREAM_BIN="$bin/kafka_stream"
export STREAM_CHAOS_KILLS=$kills STREAM_CHAOS_RATE=$rate STREAM_CHAOS_EVENTS=$max_events

echo "== $kills SIGKILLs, $rate orders/s, at $KAFKA_BOOTSTRAP_SERVERS ($(bench_load))" >&2
cargo test -q -p solutions --features kafka_stream --test kafka_stream_chaos -- \
  exactly_once_under_sigkill --nocapture --test-threads 1 2>&1 | grep -E "SIGKILL|exactly once|panicked|logs of the runs|test result|^  20|windows"
