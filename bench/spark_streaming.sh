#!/usr/bin/env bash
# Spark Structured Streaming against our two streaming pipelines, on the same broker and
# the same topic, rounds alternating.
#
#   bench/spark_streaming.sh [EVENTS [ROUNDS]]          default: 2000000 3
#
# Installs once, under ~/.cache/etl-katas/spark/ (Java 17+, Maven and python3 needed):
#   - PySpark $SPARK_VERSION (default 4.2.0) from PyPI, in a venv;
#   - spark-sql-kafka-0-10_2.13 of the same version with its dependencies, from Maven
#     Central (mvn dependency:copy-dependencies); the jars PySpark already ships are left out.
# Uses the broker at KAFKA_BOOTSTRAP_SERVERS, or starts scripts/kafka-local on
# BENCH_KAFKA_PORT (default 29092) and stops it at the end. Then:
#   1. order_producer: EVENTS clean events (no late, invalid or malformed record: Spark's
#      from_json and our dead letters would part ways on those) to a new topic, 3 partitions;
#   2. ROUNDS rounds, each: the Spark Kafka -> Kafka job, then `kafka_stream`; the Spark
#      Kafka -> Parquet job, then `kafka_to_parquet`. The Spark jobs are written as the
#      Structured Streaming guide writes them (from_json, withWatermark, window, to_json;
#      writeStream parquet partitioned by year/month/day/hour with a checkpoint), trigger
#      availableNow, local[2], 2 shuffle partitions, one SparkSession for all rounds.
#      Spark's time runs from start() to the end of awaitTermination() (the JVM's start-up
#      is not counted); ours is the pipeline's own busy time from its --summary-json (first
#      record read to last commit), and its whole process is printed beside it.
#   3. the results compared: every window Spark emitted equals ours (count, total,
#      average); Spark holds back the windows its final watermark has not passed, which ours
#      emits when the input is idle, so those are counted apart. The lakes hold the same
#      number of rows.
# Prints each round's throughputs and ratios (ours / Spark), then the medians of all
# rounds and of the warm ones (round 1 runs in a fresh JVM, before the JIT has compiled
# Spark's code; later rounds are warm, as a long-running job is). Beside Spark's time from
# start() it prints its batches' own time (the sum of each progress's triggerExecution,
# without the query's start-up), the fairer match for our busy time.
# BENCH_BIN_DIR=DIR uses the binaries in DIR instead of building them.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

events=${1:-2000000}
rounds=${2:-3}
spark_version=${SPARK_VERSION:-4.2.0}
cache="$HOME/.cache/etl-katas/spark"
bench_temp_dir work spark-bench

# --- Spark: PySpark from PyPI, the Kafka connector from Maven Central -----------------
venv="$cache/venv-$spark_version"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import pyspark" 2>/dev/null; then
  echo "== installing PySpark $spark_version into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "pyspark==$spark_version"
fi
jars="$cache/kafka-jars-$spark_version"
if [ ! -f "$jars/spark-sql-kafka-0-10_2.13-$spark_version.jar" ]; then
  echo "== fetching spark-sql-kafka-0-10_2.13 $spark_version and its dependencies into $jars" >&2
  mkdir -p "$jars"
  cat >"$cache/pom-$spark_version.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>etl-katas</groupId>
  <artifactId>spark-kafka-jars</artifactId>
  <version>1</version>
  <dependencies>
    <dependency>
      <groupId>org.apache.spark</groupId>
      <artifactId>spark-sql-kafka-0-10_2.13</artifactId>
      <version>$spark_version</version>
    </dependency>
  </dependencies>
</project>
EOF
  mvn -B -q -f "$cache/pom-$spark_version.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$jars" -Dmaven.repo.local="$cache/m2"
fi
pyspark_jars=$("$venv/bin/python" -c "import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), 'jars'))")
# The connector's jars that PySpark does not ship already (same artifact, any version).
extra_jars=()
for jar in "$jars"/*.jar; do
  artifact=$(basename "$jar" | sed -E 's/-[0-9][0-9.]*[^-]*\.jar$//')
  if ! compgen -G "$pyspark_jars/$artifact-[0-9]*.jar" >/dev/null; then
    extra_jars+=("$jar")
  fi
done
spark_jars=$(IFS=,; echo "${extra_jars[*]}")

# --- ours ------------------------------------------------------------------------------
bench_binaries -p solutions --bin kafka_stream --bin kafka_to_parquet -p order_producer --bin order_producer
bench_broker
broker=$KAFKA_BOOTSTRAP_SERVERS
run="$(date +%s)-$$"
topic="bench-spark-$run"

echo "== producing $events clean events to $topic (3 partitions) at $broker" >&2
"$bin/order_producer" --bootstrap "$broker" --topic "$topic" --partitions 3 \
  --mode burst --count "$events" --rate 200 --start 2026-11-25T00:00:00Z >&2

echo "== before the rounds: $(bench_load)" >&2
export BENCH_BIN="$bin" BENCH_BROKER="$broker" BENCH_TOPIC="$topic" BENCH_EVENTS="$events" \
  BENCH_ROUNDS="$rounds" BENCH_WORK="$work" BENCH_RUN="$run"
export PYSPARK_PYTHON="$venv/bin/python"
export PYSPARK_SUBMIT_ARGS="--driver-memory 2g --jars $spark_jars pyspark-shell"
"$venv/bin/python" - <<'PY'
import builtins, json, os, statistics, subprocess, time
from pyspark.sql import SparkSession
from pyspark.sql.functions import (avg, col, count, dayofmonth, from_json, hour, month, round,
                                   struct, sum, to_json, window, year)
from pyspark.sql.types import (DoubleType, IntegerType, StringType, StructField, StructType,
                               TimestampType)

bin_dir, broker, topic = os.environ["BENCH_BIN"], os.environ["BENCH_BROKER"], os.environ["BENCH_TOPIC"]
events, rounds, work, run = (int(os.environ["BENCH_EVENTS"]), int(os.environ["BENCH_ROUNDS"]),
                             os.environ["BENCH_WORK"], os.environ["BENCH_RUN"])

spark = (SparkSession.builder.master("local[2]").appName("etl-katas-bench")
         .config("spark.sql.shuffle.partitions", 2)
         .config("spark.sql.session.timeZone", "UTC")
         .config("spark.ui.enabled", "false")
         .config("spark.ui.showConsoleProgress", "false")
         .getOrCreate())
spark.sparkContext.setLogLevel("WARN")

# The order event, as fixtures/src/events.rs writes it.
schema = StructType([
    StructField("order_id", StringType()), StructField("customer_id", StringType()),
    StructField("product_id", StringType()), StructField("category", StringType()),
    StructField("quantity", IntegerType()), StructField("unit_price", DoubleType()),
    StructField("amount", DoubleType()), StructField("status", StringType()),
    StructField("timestamp", TimestampType()),
])

def orders():
    return (spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", broker)
            .option("subscribe", topic)
            .option("startingOffsets", "earliest")
            .load()
            .select(from_json(col("value").cast("string"), schema).alias("order"))
            .select("order.*"))

def spark_windows(out, checkpoint):
    windows = (orders()
               .withWatermark("timestamp", "10 minutes")
               .groupBy(window("timestamp", "5 minutes"), "category")
               .agg(count("*").alias("order_count"),
                    round(sum("amount"), 2).alias("total_amount"),
                    round(avg("amount"), 2).alias("avg_amount")))
    query = (windows.select(to_json(struct("*")).alias("value"))
             .writeStream.format("kafka")
             .option("kafka.bootstrap.servers", broker)
             .option("topic", out)
             .option("checkpointLocation", checkpoint)
             .outputMode("append")
             .trigger(availableNow=True))
    return timed(query)

def timed(writer):
    """Runs the query to its end: (seconds from start() to termination, seconds of its
    micro-batches: the sum of each progress's triggerExecution, Spark's own busy time)."""
    started = time.perf_counter()
    query = writer.start()
    query.awaitTermination()
    whole = time.perf_counter() - started
    busy = builtins.sum(p["durationMs"].get("triggerExecution", 0) for p in query.recentProgress) / 1000
    return whole, busy

def spark_lake(out, checkpoint):
    lake = (orders()
            .filter(col("order_id").isNotNull() & col("customer_id").isNotNull() & (col("amount") >= 0))
            .withColumn("year", year("timestamp")).withColumn("month", month("timestamp"))
            .withColumn("day", dayofmonth("timestamp")).withColumn("hour", hour("timestamp")))
    query = (lake.writeStream.format("parquet")
             .option("path", out)
             .option("checkpointLocation", checkpoint)
             .partitionBy("year", "month", "day", "hour")
             .trigger(availableNow=True))
    return timed(query)

def ours(args, seconds_key):
    started = time.perf_counter()
    done = subprocess.run(args, check=True, capture_output=True, text=True,
                          env={**os.environ, "RUST_LOG": "warn"})
    wall = time.perf_counter() - started
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["read"] == events, f"{args[0]} read {summary['read']} of {events} events"
    return summary[seconds_key], wall

def ours_windows(out, r):
    return ours([f"{bin_dir}/kafka_stream", "--bootstrap", broker, "--input", topic,
                 "--output", out, "--dlq", f"{topic}-dlq-{r}", "--group", f"bench-stream-{run}-{r}",
                 "--idle-timeout-s", "3", "--summary-json"], "busy_seconds")

def ours_lake(out, r):
    return ours([f"{bin_dir}/kafka_to_parquet", "--bootstrap", broker, "--topic", topic,
                 "--dlq", f"{topic}-lake-dlq-{r}", "--group", f"bench-lake-{run}-{r}",
                 "--output", out, "--checkpoint", f"{out}-checkpoint",
                 "--idle-timeout-s", "2", "--summary-json"], "ingest_seconds")

def rate(seconds):
    return events / seconds

def load():
    return os.getloadavg()[0]

results = {"stream": [], "lake": []}
def report(r, label, name, spark_times, ours_times):
    (s, s_busy), (o, o_wall) = spark_times, ours_times
    results[name].append((s, s_busy, o))
    print(f"round {r} {label} Spark {rate(s):>9,.0f} events/s ({s:.2f} s from start(); its batches "
          f"{s_busy:.2f} s) | {'kafka_stream' if name == 'stream' else 'kafka_to_parquet'} "
          f"{rate(o):>9,.0f} events/s ({o:.2f} s busy, {o_wall:.2f} s whole process) | "
          f"ours / Spark {s / o:.1f}x, batch time to busy time {s_busy / o:.1f}x (load {load():.1f})",
          flush=True)

for r in range(1, rounds + 1):
    report(r, "Kafka -> Kafka:  ", "stream",
           spark_windows(f"{topic}-spark-windows-{r}", f"{work}/spark-windows-{r}"),
           ours_windows(f"{topic}-ours-windows-{r}", r))
    report(r, "Kafka -> Parquet:", "lake",
           spark_lake(f"{work}/spark-lake-{r}", f"{work}/spark-lake-checkpoint-{r}"),
           ours_lake(f"{work}/ours-lake-{r}", r))

# --- the results agree ---------------------------------------------------------------
def read_topic(name):
    return [row.value for row in (spark.read.format("kafka")
            .option("kafka.bootstrap.servers", broker).option("subscribe", name)
            .option("startingOffsets", "earliest").option("endingOffsets", "latest").load()
            .select(col("value").cast("string").alias("value")).collect())]

spark_out = {}
for value in read_topic(f"{topic}-spark-windows-{rounds}"):
    w = json.loads(value)
    spark_out[(w["window"]["start"], w["category"])] = (w["order_count"], w["total_amount"], w["avg_amount"])
ours_out = {}
for value in read_topic(f"{topic}-ours-windows-{rounds}"):
    w = json.loads(value)
    ours_out[(w["window_start"], w["category"])] = (w["order_count"], w["total_amount"], w["avg_amount"])
differ = [k for k in spark_out if ours_out.get(k) != spark_out[k]]
assert not differ, f"{len(differ)} windows differ, e.g. {differ[0]}: Spark {spark_out[differ[0]]}, ours {ours_out.get(differ[0])}"
held = sorted(set(ours_out) - set(spark_out))
last_spark = max(k[0] for k in spark_out) if spark_out else "-"
assert all(k[0] > last_spark for k in held), "ours emitted a window that Spark's watermark had passed but Spark did not"
print(f"windows: Spark emitted {len(spark_out)}, all equal to ours; ours emitted {len(held)} more "
      f"(the windows after Spark's final watermark, which availableNow leaves open)")
spark_rows = spark.read.parquet(f"{work}/spark-lake-{rounds}").count()
ours_rows = spark.read.option("recursiveFileLookup", "false").parquet(f"{work}/ours-lake-{rounds}").count()
assert spark_rows == ours_rows == events, f"lake rows: Spark {spark_rows}, ours {ours_rows}, events {events}"
print(f"lakes: {spark_rows:,} rows each")

# Round 1 is a fresh JVM (Spark's code not yet compiled by the JIT); later rounds are warm,
# as a long-running streaming job is.
for name, label in [("stream", "Kafka -> Kafka (kafka_stream)"), ("lake", "Kafka -> Parquet (kafka_to_parquet)")]:
    for which, rows in [(f"all {rounds} rounds", results[name]),
                        (f"warm rounds 2-{rounds}", results[name][1:])]:
        if not rows:
            continue
        spark_s = statistics.median(s for s, _, _ in rows)
        spark_busy = statistics.median(b for _, b, _ in rows)
        ours_s = statistics.median(o for _, _, o in rows)
        print(f"median of {which}: {label}: Spark {rate(spark_s):,.0f} events/s "
              f"({rate(spark_busy):,.0f} over its batches' time), ours {rate(ours_s):,.0f} events/s: "
              f"ours / Spark {spark_s / ours_s:.1f}x ({spark_busy / ours_s:.1f}x batches to busy)")
spark.stop()
PY
