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
# and the outputs are compared row for row. BENCH_BIN_DIR=DIR uses the binaries in DIR
# instead of building them.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

orders=${1:-5000000}
customers=${2:-200000}
runs=${3:-5}
work=$bench_dir
data="$work/batch-$customers-$orders"
venv=${BENCH_VENV:-$HOME/.cache/etl-katas/venv}
duckdb_version=2.0.1

bench_binaries -p fixtures -p solutions --bin fixtures --bin batch_etl
if [ ! -f "$data/.complete" ]; then
  "$bin/fixtures" batch --customers "$customers" --orders "$orders" --seed 1 --dirty --out "$data"
  touch "$data/.complete"
fi
if ! "$venv/bin/python" -c "import duckdb; assert duckdb.__version__ == '$duckdb_version'" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "duckdb==$duckdb_version"
fi

exec "$venv/bin/python" bench/batch_bench.py \
  --batch-etl "$bin/batch_etl" --data "$data" --out "$work/out" --runs "$runs"
