#!/usr/bin/env bash
# The Kafka streaming pipeline against the bare-consumer ceiling, on a real broker.
#
#   bench/kafka_stream.sh [--compare-delivery ROUNDS] [EVENTS [PARTITIONS [BATCH]]]
#                                                           default: 2000000 3 100000
#
# Uses the broker at KAFKA_BOOTSTRAP_SERVERS, or starts scripts/kafka-local on
# BENCH_KAFKA_PORT (default 29092) and stops it at the end. Then:
#   1. order_producer: EVENTS generated orders in one burst to a fresh topic with
#      PARTITIONS partitions (1% late, 1% invalid, 1% malformed; event time 200/s);
#   2. bare_consumer: reads the topic with librdkafka and nothing else: the ceiling;
#   3. kafka_stream (release): the whole pipeline over the topic, micro-batches of
#      BATCH, until idle for 3 s; events/s over its busy time (first record read to
#      last commit, so neither the group join nor the idle wait counts).
# Prints each figure and the ratio pipeline / ceiling. BENCH_BIN_DIR=DIR uses the
# binaries in DIR instead of building them.
# --compare-delivery ROUNDS: step 3 becomes ROUNDS alternating pairs of runs over the same
# topic, --at-least-once then --exactly-once (each with its own group and output
# topics), and prints each rate, the medians and the cost of exactly-once.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

compare_rounds=0
if [ "${1:-}" = "--compare-delivery" ]; then
  compare_rounds=${2:?--compare-delivery needs a number of rounds}
  shift 2
fi
events=${1:-2000000}
partitions=${2:-3}
batch=${3:-100000}
work=$bench_dir
mkdir -p "$work"

bench_binaries -p solutions --bin kafka_stream -p order_producer --bin order_producer --bin bare_consumer
bench_broker
broker=$KAFKA_BOOTSTRAP_SERVERS
run="$(date +%s)-$$"
topic="bench-orders-$run"

echo "== producing $events events to $topic ($partitions partitions) at $broker" >&2
"$bin/order_producer" --bootstrap "$broker" --topic "$topic" --partitions "$partitions" \
  --mode burst --count "$events" --rate 200 --start 2026-11-25T00:00:00Z \
  --late-fraction 0.01 --invalid-fraction 0.01 --malformed-fraction 0.01 >&2

echo "== bare consumer (the ceiling)" >&2
ceiling_line=$("$bin/bare_consumer" --bootstrap "$broker" --topic "$topic")
echo "$ceiling_line"

if [ "$compare_rounds" -gt 0 ]; then
  for round in $(seq 1 "$compare_rounds"); do
    for delivery in at-least-once exactly-once; do
      echo "== round $round: kafka_stream --$delivery (micro-batches of $batch; $(bench_load))" >&2
      RUST_LOG=${RUST_LOG:-warn} "$bin/kafka_stream" --bootstrap "$broker" --input "$topic" \
        --output "$topic-aggregates-$delivery-$round" --dlq "$topic-dlq-$delivery-$round" \
        --group "bench-$run-$delivery-$round" --"$delivery" \
        --idle-timeout-s 3 --batch-size "$batch" --summary-json >"$work/kafka_stream-$delivery-$round.json"
    done
  done
  python3 - "$work" "$compare_rounds" "$events" <<'PY'
import json, statistics, sys
work, rounds, events = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rates = {}
for delivery in ("at-least-once", "exactly-once"):
    for r in range(1, rounds + 1):
        counts = json.loads(open(f"{work}/kafka_stream-{delivery}-{r}.json").read().strip().splitlines()[-1])
        assert counts["read"] == events, f"{delivery} round {r} read {counts['read']} of {events} events"
        rates.setdefault(delivery, []).append(counts["read"] / counts["busy_seconds"])
for delivery, rs in rates.items():
    print(f"kafka_stream --{delivery}: " + ", ".join(f"{r:,.0f}" for r in rs)
          + f" events/s; median {statistics.median(rs):,.0f}")
alo, eo = (statistics.median(rates[d]) for d in ("at-least-once", "exactly-once"))
pairs = [1 - e / a for a, e in zip(rates["at-least-once"], rates["exactly-once"])]
print(f"cost of exactly-once: {1 - eo / alo:.1%} of the median rate "
      f"(per round: {', '.join(f'{p:.1%}' for p in pairs)})")
PY
  exit 0
fi

echo "== kafka_stream (micro-batches of $batch; $(bench_load))" >&2
RUST_LOG=${RUST_LOG:-warn} "$bin/kafka_stream" --bootstrap "$broker" --input "$topic" \
  --output "$topic-aggregates" --dlq "$topic-dlq" --group "bench-$run" \
  --idle-timeout-s 3 --batch-size "$batch" --summary-json >"$work/kafka_stream.json"

python3 - "$work/kafka_stream.json" "$ceiling_line" "$events" <<'PY'
import json, re, sys
counts = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
ceiling = float(re.search(r"([0-9.]+) events/s", sys.argv[2]).group(1))
events = int(sys.argv[3])
rate = counts["read"] / counts["busy_seconds"]
assert counts["read"] == events, f"the pipeline read {counts['read']} of {events} events"
assert counts["read"] == counts["processed"] + counts["late"] + counts["malformed"], counts
print(f"kafka_stream: {counts['read']} events (late {counts['late']}, malformed {counts['malformed']}, "
      f"{counts['windows_emitted']} windows) in {counts['busy_seconds']:.2f} s, "
      f"{counts['micro_batches']} micro-batches: {rate:,.0f} events/s")
print(f"ratio to the bare consumer ({ceiling:,.0f} events/s): {rate / ceiling:.0%}")
PY
