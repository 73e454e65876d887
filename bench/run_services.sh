#!/usr/bin/env bash
# bench/run_services.sh - the actor services benchmarks (request/reply,
# timers) of Troupe and of Erlang/OTP side by side: medians and ratios.
#
#   bench/run_services.sh [-n RUNS] [--build DIR] [--peers erlang|none]
#                         [--timeout SEC] [--out FILE] [-- BENCH-OPTIONS]
#
# Builds what is missing (Release, into DIR, default build/rel), then runs
# RUNS rounds (default 5); a round runs each benchmark once per
# implementation, interleaved (troupe request, erlang request, troupe
# timers, erlang timers) so slow drifts of the machine hit both columns
# alike. Each run is bounded by --timeout seconds (default 300). Options
# after -- go to both implementations' benchmarks (e.g. -- trips=100000
# becomes --trips=100000 for Troupe and trips=100000 for Erlang). Prints
#   figure | Troupe | Erlang | vs Erlang
# with medians and "vs Erlang" = how many times better Troupe is (> 1:
# Troupe wins). Erlang has one request/reply (gen_server:call): every
# request row compares with it. Erlang runs with erl +S 2:2. The raw
# RESULT lines and the table go to bench/results/services-<date>.txt (or
# --out FILE). See bench/SERVICES.md for the method.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RUNS=5
BUILD=$ROOT/build/rel
PEERS=erlang
TIMEOUT=300
OUT=
EXTRA=()

die() { echo "run_services.sh: $*" >&2; exit 2; }
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

while [ $# -gt 0 ]; do
  case $1 in
    -n) RUNS=$2; shift 2 ;;
    -n*) RUNS=${1#-n}; shift ;;
    --build) BUILD=$2; shift 2 ;;
    --peers) PEERS=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
# Made absolute: the peers are built from their own folders.
mkdir -p "$BUILD" && BUILD=$(cd "$BUILD" && pwd)
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "-n needs a positive number"
[ "$PEERS" = none ] && PEERS=
BENCHES=(request timers)

build_troupe() { bench_build "${BENCHES[@]}"; }

build_erlang() { bench_erlc reqreply; }

# Sets CMD to the command running benchmark $2 of implementation $1.
command_for() {
  local o
  case $1 in
    troupe) CMD=("$BUILD/bench/$2")
            for o in "${EXTRA[@]}"; do CMD+=("--$o"); done ;;
    erlang) CMD=(erl +S 2:2 -noshell -pa "$BUILD/bench/peers/erlang"
                 -run reqreply main "$2" "${EXTRA[@]}") ;;
  esac
}

RAW=$(mktemp)
trap 'rm -f "$RAW"' EXIT

# Runs one benchmark once; appends "<impl> <figure> <value> <unit>" per
# RESULT line to $RAW. A failure or timeout is reported, not fatal.
run_one() {
  local impl=$1 bench=$2 out rc=0
  command_for "$impl" "$bench"
  out=$(timeout --kill-after=10 "$TIMEOUT" "${CMD[@]}" 2>&1) || rc=$?
  if [ $rc -ne 0 ]; then
    echo "  FAILED: $impl $bench (exit $rc$([ $rc -eq 124 ] && echo ', timed out'))" >&2
    echo "$out" | tail -5 | sed 's/^/    /' >&2
    echo "FAILED $impl $bench $rc" >>"$RAW"
    return 0
  fi
  echo "$out" | awk -v i="$impl" \
    '$1 == "RESULT" { n = $2; sub(/^erlang\./, "", n); print i, n, $3, $4 }' >>"$RAW"
}

# Rows: Troupe figure, the Erlang figure it compares with ("-": none),
# better (lo/hi), unit.
ROWS="request.ns_round_trip request.ns_gs_call lo ns
request.ns_round_trip_cross request.ns_gs_call lo ns
request.ns_gs_call request.ns_gs_call lo ns
request.ns_round_trip_notimeout - lo ns
timers.ns_arm_cancel timers.ns_arm_cancel lo ns
timers.ns_arm timers.ns_arm lo ns
timers.bytes_per_timer timers.bytes_per_timer lo B"

table() {
  awk -v rows="$ROWS" '
    function median(key,   n, a, i, j, t) {
      if (vals[key] == "") return ""
      n = split(vals[key], a, " ")
      for (i = 2; i <= n; i++) { t = a[i] + 0
        for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]
        a[j + 1] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function fmt(v) {
      if (v == "") return "-"
      if (v >= 100) return sprintf("%.0f", v)
      return sprintf("%.1f", v)
    }
    $1 != "FAILED" { vals[$1 " " $2] = vals[$1 " " $2] " " $3 }
    END {
      n = split(rows, r, "\n")
      printf "%-34s %10s %10s %10s\n", "figure", "Troupe", "Erlang", "vs Erlang"
      for (i = 1; i <= n; i++) {
        split(r[i], f, " ")
        t = median("troupe " f[1]); e = f[2] == "-" ? "" : median("erlang " f[2])
        ratio = "-"
        if (t != "" && e != "" && t > 0 && e > 0)
          ratio = sprintf("%.2fx", f[3] == "hi" ? t / e : e / t)
        printf "%-34s %10s %10s %10s\n", f[1] " (" f[4] ")", fmt(t), fmt(e), ratio
      }
    }' "$RAW"
}

IMPLS=(troupe)
build_troupe
for p in ${PEERS//,/ }; do
  case $p in
    erlang) build_erlang; IMPLS+=(erlang) ;;
    *) die "unknown peer $p (erlang or none)" ;;
  esac
done

STAMP=$(date +%Y-%m-%d-%H%M%S)
[ -n "$OUT" ] || { mkdir -p "$HERE/results"; OUT=$HERE/results/services-$STAMP.txt; }
{
  bench_header "Troupe services benchmarks" "" erlang
  [ ${#EXTRA[@]} -gt 0 ] && echo "# options: ${EXTRA[*]}"
} >"$OUT.head"

START=$(date +%s)
for ((r = 1; r <= RUNS; r++)); do
  echo "round $r/$RUNS ($(($(date +%s) - START)) s)" >&2
  for b in "${BENCHES[@]}"; do
    for i in "${IMPLS[@]}"; do
      run_one "$i" "$b"
    done
  done
done

bench_save "impl figure value unit"
if grep -q '^FAILED' "$RAW"; then
  echo "some runs FAILED (see above)" >&2
  exit 1
fi
