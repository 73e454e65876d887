#!/usr/bin/env bash
# bench/run_supervisor.sh - crash+restart rate of a one_for_one supervisor:
# Troupe (bench/restart.c) side by side with Erlang/OTP
# (bench/peers/erlang/restart.erl), medians of N runs.
#
#   bench/run_supervisor.sh [-n RUNS] [--build DIR] [--peers erlang|none]
#                           [--children C] [--long R] [--short R]
#                           [--timeout SEC] [--out FILE]
#
# Two figures, each run RUNS times (default 5), interleaved (troupe,
# erlang, next figure ...) so drifts of a noisy machine hit both columns:
#   long:  R restarts (default 100,000) - the steady rate;
#   short: R restarts (default 2,000) - a run short enough that OTP's
#          restart history (a list it filters on every restart, O(restarts
#          inside the period)) stays small; see bench/SUPERVISOR.md.
# Both use C children (default 100), intensity "infinite", period 1 s.
# Builds what is missing (Release, into DIR, default build/rel). Prints a
# table of medians (Troupe/Erlang = how many times faster Troupe is) and
# writes every RESULT line and the table to FILE if --out is given.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RUNS=5
BUILD=$ROOT/build/rel
PEERS=erlang
CHILDREN=100
LONG=100000
SHORT=2000
TIMEOUT=600
OUT=

die() { echo "run_supervisor.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case $1 in
    -n) RUNS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --peers) PEERS=$2; shift 2 ;;
    --children) CHILDREN=$2; shift 2 ;;
    --long) LONG=$2; shift 2 ;;
    --short) SHORT=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
# Made absolute: the peers are built from their own folders.
mkdir -p "$BUILD" && BUILD=$(cd "$BUILD" && pwd)
for v in "$RUNS" "$CHILDREN" "$LONG" "$SHORT"; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || die "numbers must be positive integers"
done
[ "$PEERS" = none ] && PEERS=

# --- build ----------------------------------------------------------------
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD" -j "$(nproc)" --target restart >/dev/null ||
  die "Troupe build failed (run: cmake --build $BUILD --target restart)"
if [ -n "$PEERS" ]; then
  command -v erlc >/dev/null ||
    die "erl/erlc not found: install Erlang/OTP or use --peers none"
  mkdir -p "$BUILD/bench/peers/erlang"
  erlc -o "$BUILD/bench/peers/erlang" "$HERE/peers/erlang/restart.erl" ||
    die "erlc failed"
fi

# --- running --------------------------------------------------------------
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

# run IMPL SIZE R: appends "IMPL SIZE value" for restart.per_s to $LOG.
run() {
  local impl=$1 size=$2 r=$3 out v
  if [ "$impl" = troupe ]; then
    out=$(timeout "$TIMEOUT" "$BUILD/bench/restart" --restarts="$r" \
            --children="$CHILDREN") || die "troupe restart failed: $out"
  else
    out=$(timeout "$TIMEOUT" erl +S 2:2 -noshell \
            -pa "$BUILD/bench/peers/erlang" -run restart main \
            restarts="$r" children="$CHILDREN") ||
      die "erlang restart failed: $out"
  fi
  echo "$out" | sed "s/^/[$impl $size] /" >&2
  v=$(echo "$out" | awk '$1 == "RESULT" && $2 ~ /restart.per_s$/ {print $3}')
  [ -n "$v" ] || die "$impl printed no restart.per_s"
  echo "$impl $size $v" >>"$LOG"
}

median() { # impl size
  awk -v i="$1" -v s="$2" '$1 == i && $2 == s {print $3}' "$LOG" |
    sort -g | awk '{a[NR] = $1} END {
      if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2];
      else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

for ((i = 1; i <= RUNS; i++)); do
  for size in long short; do
    r=$LONG
    [ "$size" = short ] && r=$SHORT
    run troupe "$size" "$r"
    [ -n "$PEERS" ] && run erlang "$size" "$r"
  done
done

table() {
  printf '%-34s %12s %12s %14s\n' figure Troupe Erlang Troupe/Erlang
  for size in long short; do
    local r=$LONG t e ratio
    [ "$size" = short ] && r=$SHORT
    t=$(median troupe "$size")
    e=$(median erlang "$size")
    ratio=-
    [ "$e" != - ] && ratio=$(awk -v t="$t" -v e="$e" 'BEGIN {printf "%.1fx", t / e}')
    printf '%-34s %12.0f %12s %14s\n' "restarts/s ($r restarts)" "$t" \
      "$([ "$e" = - ] && echo - || printf '%.0f' "$e")" "$ratio"
  done
  echo "(medians of $RUNS runs, $CHILDREN children, one_for_one, $(nproc) CPUs;" \
       "Erlang/OTP $(erl -noshell -eval 'io:format("~s",[erlang:system_info(otp_release)]),halt().' 2>/dev/null || echo '?') +S 2:2)"
}

table
if [ -n "$OUT" ]; then
  { uname -a; cat "$LOG"; table; } >"$OUT"
fi
