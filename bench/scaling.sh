#!/usr/bin/env bash
# bench/scaling.sh - the five core benchmarks of Troupe at several scheduler
# counts: how the figures move from 1 core to many.
#
#   bench/scaling.sh [--schedulers 1,2,4,8,16] [-n RUNS] [--quick]
#                    [--build DIR | --bin DIR] [--timeout SEC] [--out FILE]
#
# For every scheduler count, runs each benchmark RUNS times (default 3) and
# prints a table of medians, one row per figure, one column per count. Made
# for a one-shot run on a bigger machine: at default sizes it takes about
# 1.5 s per benchmark set, so the default sweep is well under 4 minutes;
# --quick (one run, a fifth of the sizes) takes seconds. --bin DIR runs the
# executables found in DIR and builds nothing (for a machine without a
# build tree); otherwise what is missing is built (Release) into --build DIR
# (default build/rel). The raw RESULT lines and the table go to --out FILE
# (default bench/results/scaling-<date>.txt).
# Counts above the number of CPUs oversubscribe the cores (threads are
# pinned modulo the CPU count): expect those columns to be worse.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SCHEDS=1,2,4,8,16
RUNS=3
QUICK=0
BUILD=$ROOT/build/rel
BIN=
TIMEOUT=120
OUT=

die() { echo "scaling.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case $1 in
    --schedulers) SCHEDS=$2; shift 2 ;;
    --schedulers=*) SCHEDS=${1#*=}; shift ;;
    -n) RUNS=$2; shift 2 ;;
    --quick) QUICK=1; RUNS=1; shift ;;
    --build) BUILD=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
# Made absolute: the peers are built from their own folders.
mkdir -p "$BUILD" && BUILD=$(cd "$BUILD" && pwd)
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "-n needs a positive number"
[[ $SCHEDS =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--schedulers needs a list like 1,2,4"
BENCHES=(spawn_idle pingpong fanin ring skynet)
declare -A SIZE=()
if [ $QUICK = 1 ]; then
  SIZE=([spawn_idle]=--actors=200000 [pingpong]=--trips=200000
        [fanin]=--msgs=200000 [ring]=--hops=2000000 [skynet]=--leaves=100000)
fi

if [ -z "$BIN" ]; then
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  cmake --build "$BUILD" -j "$(nproc)" --target "${BENCHES[@]}" >/dev/null ||
    die "build failed (run: cmake --build $BUILD)"
  BIN=$BUILD/bench
fi
for b in "${BENCHES[@]}"; do
  [ -x "$BIN/$b" ] || die "$BIN/$b not found"
done

RAW=$(mktemp)
trap 'rm -f "$RAW"' EXIT
START=$(date +%s)
for s in ${SCHEDS//,/ }; do
  echo "schedulers=$s ($(($(date +%s) - START)) s)" >&2
  for ((r = 1; r <= RUNS; r++)); do
    for b in "${BENCHES[@]}"; do
      rc=0 args=("--schedulers=$s")
      [ -z "${SIZE[$b]:-}" ] || args+=("${SIZE[$b]}")
      out=$(timeout --kill-after=10 "$TIMEOUT" "$BIN/$b" "${args[@]}" 2>&1) || rc=$?
      if [ $rc -ne 0 ]; then
        echo "  FAILED: $b --schedulers=$s (exit $rc)" >&2
        echo "FAILED $s $b $rc" >>"$RAW"
        continue
      fi
      echo "$out" | awk -v s="$s" '$1 == "RESULT" { print s, $2, $3, $4 }' >>"$RAW"
    done
  done
done

table() {
  awk -v scheds="$SCHEDS" '
    function median(key,   n, a, i, j, t) {
      if (!(key in vals)) return ""
      n = split(vals[key], a, " ")
      for (i = 2; i <= n; i++) { t = a[i] + 0
        for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]
        a[j + 1] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function fmt(v) {
      if (v == "") return "-"
      if (v >= 1e6) return sprintf("%.1fM", v / 1e6)
      if (v >= 100) return sprintf("%.0f", v)
      return sprintf("%.1f", v)
    }
    $1 != "FAILED" {
      vals[$1 " " $2] = vals[$1 " " $2] " " $3
      if (!($2 in seen)) { seen[$2] = 1; order[++nf] = $2; unit[$2] = $4 }
    }
    END {
      ns = split(scheds, s, ",")
      printf "%-40s", "figure \\ schedulers"
      for (i = 1; i <= ns; i++) printf " %9s", s[i]
      printf "\n"
      for (f = 1; f <= nf; f++) {
        printf "%-40s", order[f] " (" unit[order[f]] ")"
        for (i = 1; i <= ns; i++) printf " %9s", fmt(median(s[i] " " order[f]))
        printf "\n"
      }
    }' "$RAW"
}

STAMP=$(date +%Y-%m-%d-%H%M%S)
[ -n "$OUT" ] || { mkdir -p "$HERE/results"; OUT=$HERE/results/scaling-$STAMP.txt; }
{
  echo "# Troupe scaling, $STAMP, $RUNS runs each (medians)$([ $QUICK = 1 ] && echo ', quick sizes')"
  echo "# host: $(uname -srm), $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "# troupe: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo
  table
  echo
  echo "# raw: schedulers figure value unit"
  cat "$RAW"
} >"$OUT"
echo
echo "$(nproc) CPUs; medians of $RUNS"
table
echo
echo "raw results: $OUT ($(($(date +%s) - START)) s)"
! grep -q '^FAILED' "$RAW" || { echo "some runs FAILED (see above)" >&2; exit 1; }
