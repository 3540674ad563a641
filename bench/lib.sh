# The set-up the benchmarks share. Each script sources it from the repository's root:
#
#   cd "$(dirname "$0")/.." && . bench/lib.sh
#
# Builds go to CARGO_TARGET_DIR, by default ~/.cache/etl-katas/target (CI's, so later
# runs are warm).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/etl-katas/target}"
# Where the benchmarks keep what later runs reuse (generated data, the last outputs).
bench_dir=${BENCH_DIR:-${TMPDIR:-/tmp}/etl-katas-bench}

# bench_on_exit COMMAND: runs COMMAND when the script exits, after those registered later
# (one EXIT trap for all: a second `trap ... EXIT` would replace the first).
bench_exit_commands=()
bench_on_exit() {
  bench_exit_commands=("$1" ${bench_exit_commands[@]+"${bench_exit_commands[@]}"})
  trap 'for c in "${bench_exit_commands[@]}"; do eval "$c"; done' EXIT
}

# bench_binaries CARGO_BUILD_ARGS...: sets `bin` to the folder of the release binaries,
# BENCH_BIN_DIR if set (binaries built before, libkata_datafusion.so beside them), else
# `cargo build --release CARGO_BUILD_ARGS...`'s. The binaries link DataFusion and std
# dynamically (see README, Performance): LD_LIBRARY_PATH is set for them.
bench_binaries() {
  if [ -n "${BENCH_BIN_DIR:-}" ]; then
    bin=$BENCH_BIN_DIR
  else
    cargo build -q --release "$@"
    bin="$CARGO_TARGET_DIR/release"
  fi
  export LD_LIBRARY_PATH="$(rustc --print target-libdir):$bin:$bin/deps${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

# bench_broker: the broker at KAFKA_BOOTSTRAP_SERVERS, or else scripts/kafka-local
# started on BENCH_KAFKA_PORT (default 29092), stopped when the script exits, and
# KAFKA_BOOTSTRAP_SERVERS set to it.
bench_broker() {
  if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
    local port=${BENCH_KAFKA_PORT:-29092}
    scripts/kafka-local up --port "$port" >&2
    bench_on_exit "scripts/kafka-local down --port $port >&2"
    export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$port
  fi
}

# bench_temp_dir VARIABLE NAME: sets VARIABLE to a new folder NAME.XXXXXX under TMPDIR,
# removed when the script exits. (Not `$(...)`: in a subshell, the removal would run
# when the subshell ends.)
bench_temp_dir() {
  local dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/$2.XXXXXX")
  bench_on_exit "rm -rf '$dir'"
  printf -v "$1" %s "$dir"
}

# bench_load: the load averages over 1, 5 and 15 minutes, to print beside each figure.
bench_load() {
  echo "load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
}
