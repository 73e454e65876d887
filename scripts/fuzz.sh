#!/usr/bin/env bash
# scripts/fuzz.sh - builds the libFuzzer targets and runs each for a fixed
# time, failing on any crash, leak, sanitizer report or timeout.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default: $TP_FUZZ_TIME or 20); a long run is one
# command: scripts/fuzz.sh 600. TARGETs are names without the fuzz_
# prefix (default: every fuzz_* target built). Build: CC=clang, TP_FUZZ=ON,
# into $TP_FUZZ_BUILD (default build/fuzz). Each target starts from its
# seed corpus fuzz/corpus/<name>/ (never written to) plus a work corpus
# kept in the build dir; a crashing input is saved as
# <build>/fuzz/artifacts/<name>/crash-* (turn it into a cmocka regression
# test). Environment: TP_FUZZ_JOBS (parallel fuzzing processes per target,
# default 1), TP_FUZZ_MAX_LEN (largest input, default 16384).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

TIME=${TP_FUZZ_TIME:-20}
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
  TIME=$1
  shift
fi
BUILD=${TP_FUZZ_BUILD:-build/fuzz}
JOBS=${TP_FUZZ_JOBS:-1}
MAX_LEN=${TP_FUZZ_MAX_LEN:-16384}

command -v clang >/dev/null || { echo "fuzz.sh: clang not found" >&2; exit 2; }

echo "fuzz.sh: building libFuzzer targets in $BUILD"
CC=clang cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTP_FUZZ=ON -DTP_WERROR=ON -DTP_BUILD_TESTS=OFF -DTP_BUILD_BENCH=OFF \
  -DTP_BUILD_SAMPLES=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc)" >/dev/null
BUILD=$(cd "$BUILD" && pwd)

targets=()
if [ $# -gt 0 ]; then
  for t in "$@"; do targets+=("$BUILD/fuzz/fuzz_$t"); done
else
  for t in "$BUILD"/fuzz/fuzz_*; do
    [ -x "$t" ] && [ -f "$t" ] && targets+=("$t")
  done
fi
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz.sh: no fuzz targets (fuzz/fuzz-*.cmake register them)"
  exit 0
fi

# UBSan must stop at the first report, as ASan does.
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1

failed=0
for t in "${targets[@]}"; do
  name=${t##*/fuzz_}
  seeds=$ROOT/fuzz/corpus/$name
  work=$BUILD/fuzz/corpus/$name
  art=$BUILD/fuzz/artifacts/$name
  log=$BUILD/fuzz/$name.log
  [ -x "$t" ] || { echo "fuzz.sh: no target $t" >&2; failed=1; continue; }
  mkdir -p "$work" "$art"
  dirs=("$work")
  [ -d "$seeds" ] && dirs+=("$seeds")
  echo "fuzz.sh: $name for ${TIME}s (jobs $JOBS, seeds: $seeds)"
  par=()
  # -jobs (even 1) forks workers logging to fuzz-<n>.log in the cwd (the
  # build dir); the parent copies their output into its own.
  [ "$JOBS" -gt 1 ] && par=(-jobs="$JOBS" -workers="$JOBS")
  rc=0
  (cd "$BUILD/fuzz" && rm -f fuzz-*.log &&
     "$t" -max_total_time="$TIME" -max_len="$MAX_LEN" -timeout=10 \
       -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$art/" \
       "${par[@]}" "${dirs[@]}") >"$log" 2>&1 || rc=$?
  grep -E '^stat::number_of_executed_units|^stat::average_exec_per_sec' \
    "$log" | sed "s/^/  $name: /" || true
  if [ $rc -ne 0 ] || ls "$art"/crash-* "$art"/leak-* "$art"/timeout-* \
       "$art"/oom-* >/dev/null 2>&1; then
    echo "fuzz.sh: $name FAILED (exit $rc); last lines of $log:" >&2
    tail -30 "$log" >&2
    ls -l "$art" >&2
    failed=1
  else
    echo "fuzz.sh: $name ok"
  fi
done
exit $failed
