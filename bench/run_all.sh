#!/usr/bin/env bash
# bench/run_all.sh - runs the core benchmarks of Troupe and of its peers
# (Erlang/OTP, Go) side by side and prints the medians and the ratios.
#
#   bench/run_all.sh [-n RUNS] [--build DIR] [--peers erlang,go|none]
#                    [--timeout SEC] [--out FILE]
#
# Builds what is missing (Release, into DIR, default build/rel), then runs
# RUNS rounds (default 5). A round runs every benchmark once per
# implementation, interleaved (troupe, erlang, go, next benchmark ...) so
# slow drifts of this noisy machine hit every column alike. Each run is
# bounded by --timeout seconds (default 300). Prints a table of medians:
#   figure | Troupe | Erlang | Go | Troupe/Erlang | Troupe/Go | target | met?
# where Troupe/X is Troupe's speedup over X (how many times better, > 1:
# Troupe wins, whichever way the figure goes), and "met?" needs the budget
# (the issue's, or the design brief's section 7 for ring and skynet) and a
# win over Erlang.
# Every RESULT line, the machine and the table go to
# bench/results/core-<date>.txt (or --out FILE).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RUNS=5
BUILD=$ROOT/build/rel
PEERS=erlang,go
TIMEOUT=300
OUT=

die() { echo "run_all.sh: $*" >&2; exit 2; }
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
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
# Made absolute: the peers are built from their own folders.
mkdir -p "$BUILD" && BUILD=$(cd "$BUILD" && pwd)
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "-n needs a positive number"
[ "$PEERS" = none ] && PEERS=
BENCHES=(spawn_idle pingpong fanin ring skynet)

# --- build --------------------------------------------------------------
build_troupe() { bench_build "${BENCHES[@]}"; }

build_erlang() { bench_erlc core_bench; }

build_go() {
  if ! command -v go >/dev/null; then
    die "go not found: install Go (apt-get install golang-go) or use --peers erlang|none"
  fi
  mkdir -p "$BUILD/bench/peers/go"
  (cd "$HERE/peers/go" && GOFLAGS=-mod=mod GOPROXY=off \
     go build -o "$BUILD/bench/peers/go/core_bench" .) || die "go build failed"
}

# --- running ------------------------------------------------------------
# Sets CMD to the command line running benchmark $2 of implementation $1.
command_for() {
  case $1 in
    troupe) CMD=("$BUILD/bench/$2") ;;
    erlang) CMD=(erl +S 2:2 +P 4000000 -noshell -pa "$BUILD/bench/peers/erlang"
                 -run core_bench main "$2") ;;
    go) CMD=(env GOMAXPROCS=2 "$BUILD/bench/peers/go/core_bench" "-bench=$2") ;;
  esac
}

RAW=$(mktemp)
trap 'rm -f "$RAW"' EXIT

# Runs one benchmark once; appends "<impl> <bench> <name> <value> <unit>"
# per RESULT line to $RAW. A failure or timeout is reported, not fatal.
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
  echo "$out" | awk -v i="$impl" -v b="$bench" \
    '$1 == "RESULT" { n = $2; sub(/^(erlang|go)\./, "", n); print i, b, n, $3, $4 }' >>"$RAW"
}

# --- the table ----------------------------------------------------------
# figure, better (lo/hi), target, target text
TARGETS="spawn_idle.bytes_per_actor lo 160 <=160B
spawn_idle.ns_per_spawn lo 100 <=100ns
pingpong.ns_one_way lo 50 <=50ns
fanin.msgs_per_s hi 30000000 >=30M/s
ring.ns_per_hop lo 45 <=45ns
skynet.ms lo 380 <=380ms"

table() {
  awk -v targets="$TARGETS" '
    function median(key,   n, a, i, j, t) {
      n = split(vals[key], a, " ")
      if (n == 0 || vals[key] == "") return ""
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
    function ratio(t, p, better) {
      if (t == "" || p == "" || t == 0 || p == 0) return ""
      return better == "hi" ? t / p : p / t
    }
    function fr(r) { return r == "" ? "-" : sprintf("%.2fx", r) }
    $1 != "FAILED" { vals[$1 " " $3] = vals[$1 " " $3] " " $4 }
    END {
      n = split(targets, rows, "\n")
      printf "%-28s %9s %9s %9s %13s %9s %8s  %s\n", "figure", "Troupe",
             "Erlang", "Go", "Troupe/Erlang", "Troupe/Go", "target", "met?"
      for (i = 1; i <= n; i++) {
        split(rows[i], f, " ")
        t = median("troupe " f[1]); e = median("erlang " f[1])
        g = median("go " f[1])
        re = ratio(t, e, f[2]); rg = ratio(t, g, f[2])
        met = "-"
        if (t != "") {
          ok = f[2] == "hi" ? t >= f[3] : t <= f[3]
          met = ok ? "yes" : "NO"
          if (re != "" && re <= 1) met = met " (slower than Erlang)"
        }
        printf "%-28s %9s %9s %9s %13s %9s %8s  %s\n", f[1], fmt(t),
               fmt(e), fmt(g), fr(re), fr(rg), f[4], met
      }
    }' "$RAW"
}

# --- main ---------------------------------------------------------------
IMPLS=(troupe)
build_troupe
for p in ${PEERS//,/ }; do
  case $p in
    erlang) build_erlang; IMPLS+=(erlang) ;;
    go) build_go; IMPLS+=(go) ;;
    *) die "unknown peer $p (erlang, go or none)" ;;
  esac
done

STAMP=$(date +%Y-%m-%d-%H%M%S)
[ -n "$OUT" ] || { mkdir -p "$HERE/results"; OUT=$HERE/results/core-$STAMP.txt; }
{
  bench_header "Troupe core benchmarks" "" erlang go
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

bench_save "impl bench figure value unit"
if grep -q '^FAILED' "$RAW"; then
  echo "some runs FAILED (see above)" >&2
  exit 1
fi
