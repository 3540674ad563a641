#!/usr/bin/env bash
# Kafka -> Parquet throughput on a real broker.
#
# Produces COUNT orders (default 2,000,000; 1 % late, 1 % invalid, 0.5 % malformed) to a new
# topic, reads the topic once with a bare consumer (librdkafka alone: the ceiling), then runs
# the release reference `kafka_to_parquet` on it into a new lake and prints its events/s and
# the ratio to the ceiling.
#
#   scripts/kafka-local up && export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092
#   bench/kafka_parquet.sh                   # COUNT=500000 MAX_BATCH=100000 PARTITIONS=3 to vary
#
# The topics it makes (bench-orders-*) stay on the broker; `scripts/kafka-local down` drops them.
# BENCH_BIN_DIR=DIR uses the binaries in DIR instead of building them.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

: "${KAFKA_BOOTSTRAP_SERVERS:?set KAFKA_BOOTSTRAP_SERVERS to a real broker, e.g. scripts/kafka-local up}"
COUNT=${COUNT:-2000000}
MAX_BATCH=${MAX_BATCH:-200000}
PARTITIONS=${PARTITIONS:-3}
run="$(date +%s)-$$"
topic="bench-orders-$run"
bench_temp_dir work kafka-parquet-bench

echo "== building (release)"
bench_binaries -p order_producer --bin order_producer --bin bare_consumer -p solutions --bin kafka_to_parquet

echo "== producing $COUNT orders to $topic ($PARTITIONS partitions) on $KAFKA_BOOTSTRAP_SERVERS"
produced=$("$bin/order_producer" \
    --bootstrap "$KAFKA_BOOTSTRAP_SERVERS" --topic "$topic" --partitions "$PARTITIONS" \
    --mode burst --count "$COUNT" --rate 100 --start 2026-11-25T00:00:00Z \
    --late-fraction 0.01 --invalid-fraction 0.01 --malformed-fraction 0.005 \
    --summary-json 2>"$work/producer.log" | tail -n 1)
echo "$produced"

echo "== bare consumer (the ceiling)"
bare=$("$bin/bare_consumer" --bootstrap "$KAFKA_BOOTSTRAP_SERVERS" --topic "$topic")
echo "$bare"
bare_eps=$(sed -E 's/.* ([0-9.]+) events\/s.*/\1/' <<<"$bare")

echo "== kafka_to_parquet (release reference, --max-batch $MAX_BATCH); $(bench_load)"
TIMEFORMAT='%U %S'
{ time "$bin/kafka_to_parquet" \
    --bootstrap "$KAFKA_BOOTSTRAP_SERVERS" --topic "$topic" --dlq "$topic-dlq" \
    --group "bench-lake-$run" --output "$work/lake" --checkpoint "$work/checkpoint" \
    --max-batch "$MAX_BATCH" --idle-timeout-s 2 --summary-json >"$work/summary" 2>"$work/pipeline.log"; } 2>"$work/cpu"
summary=$(tail -n 1 "$work/summary")
echo "$summary"

python3 - "$summary" "$bare_eps" "$COUNT" "$work/lake" "$(tail -n 1 "$work/cpu")" <<'PY'
import json, os, sys
summary, bare_eps, count, lake = json.loads(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
cpu = sum(float(x) for x in sys.argv[5].split())
files = [os.path.join(d, f) for d, _, fs in os.walk(lake) for f in fs if f.endswith(".parquet")]
size = sum(os.path.getsize(f) for f in files)
eps = summary["read"] / summary["ingest_seconds"]
assert summary["read"] == count, f"read {summary['read']} of {count} records"
print(f"== result: {summary['read']:,} records in {summary['ingest_seconds']:.2f} s = {eps:,.0f} events/s "
      f"({eps / bare_eps:.0%} of the bare consumer's {bare_eps:,.0f} events/s); "
      f"{summary['written']:,} rows in {len(files)} files ({size / 1e6:.1f} MB), "
      f"{summary['dead_letters']:,} dead letters, {summary['batches']} batches; "
      f"CPU (user + sys) {cpu:.2f} s, {cpu / summary['read'] * 1e6:.2f} µs per event; "
      f"load average {os.getloadavg()[0]:.1f} (on 2 shared cores, above ~1.5 read the rate as a lower bound)")
PY
