#!/usr/bin/env bash
# Build-time figures for the README: a cold `cargo test -p batch_kata` in a fresh
# clone with an empty target directory, then edit-one-step -> verdict
# (`cargo test -p batch_kata step_03`), median of 5.
#
#   bench/build_times.sh            # cold + incremental (the cold build takes minutes)
#   bench/build_times.sh --warm     # incremental only, in this checkout (lib.rs restored after)
#
# The cold run uses its own clone and target directory: kata_datafusion is a dylib
# whose file name has no hash, so two checkouts must not share a target directory.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

if [ "${1:-}" = "--warm" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/etl-katas/target}"
  backup=$(mktemp); cp katas/batch_kata/src/lib.rs "$backup"
  trap 'cp "$backup" "$repo/katas/batch_kata/src/lib.rs"; rm -f "$backup"' EXIT
else
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
  git clone -q "$repo" "$work/clone"; cd "$work/clone"
  export CARGO_TARGET_DIR="$work/target"
  start=$(date +%s.%N)
  cargo test -q -p batch_kata >/dev/null 2>&1 || true   # the pristine kata's tests fail, by design
  end=$(date +%s.%N)
  printf 'cold  cargo test -p batch_kata (fresh clone, empty target): %.1f s\n' "$(awk "BEGIN{print $end - $start}")"
fi

cargo test -q -p batch_kata step_03 >/dev/null 2>&1 || true
lib=katas/batch_kata/src/lib.rs
times=()
for i in 1 2 3 4 5; do
  # A real edit of step 3's body, different each time.
  sed -i "s/todo!(\"step 3: clean[^\"]*\")/todo!(\"step 3: clean (edit $i)\")/" "$lib"
  start=$(date +%s.%N)
  out=$(cargo test -q -p batch_kata step_03 2>&1 || true)
  end=$(date +%s.%N)
  grep -q "step 3: clean (edit $i)" <<<"$out" || { echo "edit $i was not picked up"; exit 1; }
  times+=("$(awk "BEGIN{print $end - $start}")")
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
printf 'edit step 3 -> verdict (cargo test -p batch_kata step_03): median %.2f s of: %s\n' \
  "$(sed -n 3p <<<"$sorted")" "$(printf '%.2f ' "${times[@]}")"
