#!/usr/bin/env bash
# Kafka -> Parquet exactly once under failures, at full size, on a real broker: the
# scenarios of katas/kafka_parquet_kata/tests/reference.rs (which CI runs scaled down),
# each RUNS times, with what was lost or duplicated in the lake and on the dead-letter topic.
#
#   scripts/kafka-local up && export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092
#   bench/kafka_parquet_robustness.sh            # RUNS=3 LAKE_EVENTS=1000000 LAKE_KILLS=20
#   SCENARIOS="scale_out_under_kills" RUNS=1 bench/kafka_parquet_robustness.sh
#
# Scenarios (SCENARIOS, default all three):
#   kill_9                 one instance, LAKE_KILLS SIGKILLs at random moments, then a last run
#   scale_out_under_kills  3 instances in one group on 6 partitions: one SIGKILLed mid-run (the
#                          group hands its partitions over), LAKE_KILLS SIGKILLs of random
#                          instances (each restarted), then a last run of all three
#   broker_restart         2 instances; the broker (a private one, scripts/kafka-local on free
#                          ports) SIGKILLed and restarted mid-run; half the events after it
# The reference binary is the release build (KAFKA_TO_PARQUET_BIN to use another, or
# BENCH_BIN_DIR=DIR for the one in DIR). Each run prints one FIGURES line; a run that loses
# or duplicates anything fails, and so does this script.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

: "${KAFKA_BOOTSTRAP_SERVERS:?set KAFKA_BOOTSTRAP_SERVERS to a real broker, e.g. scripts/kafka-local up}"
export LAKE_EVENTS=${LAKE_EVENTS:-1000000}
export LAKE_KILLS=${LAKE_KILLS:-20}
RUNS=${RUNS:-3}
SCENARIOS=${SCENARIOS:-"kill_9 scale_out_under_kills broker_restart"}
log=$(mktemp "${TMPDIR:-/tmp}/kafka-parquet-robustness.XXXXXX")
bench_on_exit "rm -f '$log'"

echo "== building the tests and the release reference"
cargo test --quiet -p kafka_parquet_kata --features reference --test reference --no-run
if [ -z "${KAFKA_TO_PARQUET_BIN:-}" ]; then
  bench_binaries -p solutions --bin kafka_to_parquet
  export KAFKA_TO_PARQUET_BIN="$bin/kafka_to_parquet"
fi

failed=0
for scenario in $SCENARIOS; do
  for run in $(seq 1 "$RUNS"); do
    kills=", $LAKE_KILLS kills"
    [[ $scenario == broker_restart ]] && kills=""
    echo "== $scenario, run $run of $RUNS ($LAKE_EVENTS events$kills; $(bench_load))"
    if cargo test --quiet -p kafka_parquet_kata --features reference --test reference \
        "bench_$scenario" -- --ignored --exact --nocapture >"$log" 2>&1; then
      grep '^FIGURES' "$log" || { echo "no FIGURES line"; failed=1; }
    else
      grep -E '^FIGURES|not exactly once|Error|panicked' "$log" | head -n 5
      echo "FAILED (full output kept in $log.$scenario.$run)"
      cp "$log" "$log.$scenario.$run"
      failed=1
    fi
  done
done
exit "$failed"
