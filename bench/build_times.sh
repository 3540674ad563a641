#!/usr/bin/env bash
# Build-time figures for the README, on the launcher's own path: what `cargo practice`
# runs when you save a step (practice/src/runner.rs): the kata's library with its step
# tests built by the rustc command of cargo's last build of it when nothing else has
# changed since (practice/src/direct.rs), else by `cargo test -p <kata> --lib --no-run`;
# then the test binary, run directly.
#
#   bench/build_times.sh --warm [--kata batch|kafka|parquet] [--rounds N]
#       edit one step -> its verdict, in this checkout (the kata's lib.rs is restored
#       after): the median of N rounds (default 7) and the breakdown of one more edit.
#   bench/build_times.sh [--kata ...]
#       first the cold figure: a fresh clone with an empty target directory, timed to
#       its first step verdict (`cargo practice check <kata>`: the launcher's own build,
#       the kata's build, the run), wall and user+sys CPU; then the warm figures there.
#
# Each round is a real edit of step 3's body (its todo!() message changes), checked to
# have reached the verdict. A session starts its run as the editor closes the saved file
# (practice/src/session/notify.rs), so it adds no wait to these times on Linux; each
# `practice check` here is a process of its own, which a session is not. The cold run
# uses its own clone and target directory:
# kata_datafusion is a dylib whose file name has no hash, so two checkouts must not
# share a target directory.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

warm=false kata=batch rounds=7
while [ $# -gt 0 ]; do
  case "$1" in
    --warm) warm=true ;;
    --kata) kata=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    *) echo "usage: bench/build_times.sh [--warm] [--kata batch|kafka|parquet] [--rounds N]" >&2; exit 2 ;;
  esac
  shift
done
case "$kata" in
  batch) crate=batch_kata ;;
  kafka) crate=kafka_stream_kata ;;
  parquet) crate=kafka_parquet_kata ;;
  *) echo "unknown kata: $kata" >&2; exit 2 ;;
esac

now() { date +%s.%N; }
secs() { awk "BEGIN{printf \"%.2f\", $2 - $1}"; }
median() { sort -n | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

if ! $warm; then
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
  git clone -q "$repo" "$work/clone"; cd "$work/clone"; repo=$PWD
  export CARGO_TARGET_DIR="$work/target"
  echo "cold: fresh clone, empty target dir, load before: $(load)"
  # What a learner's first verdict needs, as the README's first command starts it.
  /usr/bin/time -f '%e %U %S' -o "$work/cold.time" \
    cargo practice check "$kata" >"$work/cold.log" 2>&1 || true   # pristine steps fail, by design
  # (GNU time writes "Command exited with non-zero status 1" first: the figures are last.)
  read -r wall user sys < <(tail -n 1 "$work/cold.time")
  grep -q 'step 3' .practice/last-run.log || { echo "the cold run gave no verdict: $work/cold.log"; cat "$work/cold.log"; exit 1; }
  printf 'cold  fresh clone -> first step verdict (cargo practice check %s): %.0f s wall, %.0f s user+sys CPU (load after: %s)\n' \
    "$kata" "$wall" "$(awk "BEGIN{print $user + $sys}")" "$(load)"
fi

lib=katas/$crate/src/lib.rs
backup=$(mktemp); cp "$lib" "$backup"
trap 'cp "$backup" "$repo/$lib"; rm -f "$backup"; [ -n "${work:-}" ] && rm -rf "$work"' EXIT
edit() {  # a real edit of step 3's body, different each time
  sed -i "s/todo!(\"step 3: \([a-z_]*\)[^\"]*\")/todo!(\"step 3: \1 (edit $1)\")/" "$lib"
}

# The launcher, built; a session runs its step tests from this same code in-process.
cargo build -q -p practice
target=${CARGO_TARGET_DIR:-target}
practice="$target/debug/practice"
export LD_LIBRARY_PATH="$(rustc --print target-libdir)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# `cargo practice` gives the launcher the toolchain's cargo in CARGO (no rustup proxy).
CARGO=$(rustup which cargo 2>/dev/null || command -v cargo); export CARGO
log=.practice/last-run.log
"$practice" check "$kata" >/dev/null 2>&1 || true   # warm: everything built once

echo "warm: edit step 3 of $lib -> its verdict, $rounds rounds, load before: $(load)"
totals=() builds=() runs=() direct=0
for i in $(seq 1 "$rounds"); do
  edit "$i"
  start=$(now)
  "$practice" check "$kata" >/dev/null 2>&1 || true
  end=$(now)
  grep -q "step 3: [a-z_]* (edit $i)" "$log" || { echo "edit $i did not reach the verdict (see $log)"; exit 1; }
  # The launcher's log: each command, then `[status after S s]`.
  mapfile -t took < <(grep -o 'after [0-9.]* s\]' "$log" | grep -o '[0-9.]*')
  totals+=("$(secs "$start" "$end")") builds+=("${took[0]}") runs+=("${took[1]:-0}")
  head -n 1 "$log" | grep -q -- "--crate-name $crate" && direct=$((direct + 1))
done
printf 'edit step 3 -> verdict (launcher path, %s): median %s s of %s rounds: %s\n' \
  "$kata" "$(printf '%s\n' "${totals[@]}" | median)" "$rounds" "${totals[*]}"
printf '  of which: the build (rustc without cargo in %s of %s rounds) median %s s, test run median %s s, the launcher itself the rest\n' \
  "$direct" "$rounds" "$(printf '%s\n' "${builds[@]}" | median)" "$(printf '%s\n' "${runs[@]}" | median)"

# Breakdown of one more edit through cargo: cargo alone (nothing to do; the first call
# brings cargo's record up to date after the launcher's own builds), then the build (one
# rustc, the kata lib with its tests, and the link), then the run.
build=(cargo test -p "$crate" --lib --no-run --message-format=json)
"${build[@]}" >/dev/null 2>&1
start=$(now); "${build[@]}" >/dev/null 2>&1; end=$(now)
noop=$(secs "$start" "$end")
edit breakdown
start=$(now); "${build[@]}" >/dev/null 2>&1; end=$(now)
bin=$("${build[@]}" 2>/dev/null | grep '"test":true' | grep -o '"executable":"[^"]*"' | cut -d'"' -f4)
run_start=$(now)
(cd "katas/$crate" && RUST_BACKTRACE=0 INSTA_WORKSPACE_ROOT=$repo LD_LIBRARY_PATH="$(dirname "$bin"):$LD_LIBRARY_PATH" \
  "$bin" --color never --test-threads=64 >/dev/null 2>&1) || true
run_end=$(now)
printf '  one edit, piece by piece: cargo with nothing to build %s s; cargo + rustc (kata lib with its tests) + link %s s; test run %s s (load %s)\n' \
  "$noop" "$(secs "$start" "$end")" "$(secs "$run_start" "$run_end")" "$(load)"
