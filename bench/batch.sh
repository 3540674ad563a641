#!/usr/bin/env bash
# The batch pipeline against DuckDB on the same files, in the same run.
#
#   bench/batch.sh [ORDERS [CUSTOMERS [RUNS]]]     default: 5000000 200000 5
#
# Generates dirty data with the fixtures generator (once per size), builds batch_etl
# in release mode, makes a virtualenv with DuckDB from PyPI (once), then times
# batch_etl (the whole process) and DuckDB's two variants (amounts as DOUBLE into one
# file; DECIMAL with PER_THREAD_OUTPUT) in alternating rounds, and prints each time,
# the medians and the ratios. All write Parquet (Snappy) of the same customer summary,
# and the outputs are compared row for row.
set -euo pipefail
cd "$(dirname "$0")/.."

orders=${1:-5000000}
customers=${2:-200000}
runs=${3:-5}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/etl-katas/target}"
work=${BENCH_DIR:-${TMPDIR:-/tmp}/etl-katas-bench}
data="$work/batch-$customers-$orders"
venv=${BENCH_VENV:-$HOME/.cache/etl-katas/venv}
duckdb_version=2.0.1

cargo build -q --release -p fixtures -p solutions --bin fixtures --bin batch_etl
# The binaries link DataFusion and std dynamically (see README, Performance).
export LD_LIBRARY_PATH="$(rustc --print target-libdir):$CARGO_TARGET_DIR/release/deps${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ ! -f "$data/.complete" ]; then
  "$CARGO_TARGET_DIR/release/fixtures" batch --customers "$customers" --orders "$orders" --seed 1 --dirty --out "$data"
  touch "$data/.complete"
fi
if ! "$venv/bin/python" -c "import duckdb; assert duckdb.__version__ == '$duckdb_version'" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "duckdb==$duckdb_version"
fi

exec "$venv/bin/python" bench/batch_bench.py \
  --batch-etl "$CARGO_TARGET_DIR/release/batch_etl" --data "$data" --out "$work/out" --runs "$runs"
