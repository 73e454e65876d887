#!/usr/bin/env bash
# bench/run_net.sh - the network benchmarks of Troupe and of its peers side
# by side: echo throughput and latency (64-byte messages, closed loop) at 1,
# 100, 200 and 1,000 connections (200: the design brief's budget line), and
# memory per idle connection.
#
#   bench/run_net.sh [-n RUNS] [--build DIR] [--peers libuv,erlang,go,node]
#                    [--conns 1,100,200,1000] [--duration SEC] [--idle N]
#                    [--threads T] [--out FILE]
#
# Builds what is missing (Release, into DIR, default build/rel). A round
# runs, for each connection count, every server once (troupe, libuv,
# erlang, go, node: interleaved, so slow drifts of this noisy machine hit
# every column alike): the server starts alone, bench/loadgen (a separate
# process, `--threads` threads, default 2, 1 for one connection) measures for --duration seconds
# (default 5) after 1 s of warm-up, the server is stopped. Then every
# server once more for the idle test: loadgen opens --idle connections
# (default 15,000) and reads the server's VmRSS before and after. RUNS
# rounds (default 5); the table shows medians and the ratios
#   Troupe/libuv (echo: >= 0.90 wanted) and Troupe/Erlang (>= 1.5 wanted).
# Every RESULT line, the machine and the table go to
# bench/results/net-<date>.txt (or --out FILE).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RUNS=5
BUILD=$ROOT/build/rel
PEERS=libuv,erlang,go,node
CONNS=1,100,200,1000
DURATION=5
IDLE=15000
THREADS=2
OUT=
PORT=$((20000 + RANDOM % 10000)) # below the ephemeral range (32768-)

die() { echo "run_net.sh: $*" >&2; exit 2; }
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

while [ $# -gt 0 ]; do
  case $1 in
    -n) RUNS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --peers) PEERS=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --idle) IDLE=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
# Made absolute: the peers are built from their own folders.
mkdir -p "$BUILD" && BUILD=$(cd "$BUILD" && pwd)
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "-n needs a positive number"
[ "$PEERS" = none ] && PEERS=

# --- build --------------------------------------------------------------
build_troupe() { bench_build echo_server loadgen echo_uv; }

build_peer() {
  local dir=$BUILD/bench/peers
  case $1 in
    libuv) ;; # built with Troupe (echo_uv)
    erlang) bench_erlc echo ;;
    go)
      command -v go >/dev/null || die "go not found (or use --peers without go)"
      mkdir -p "$dir/go"
      (cd "$HERE/peers/go" && GOFLAGS=-mod=mod GOPROXY=off \
         go build -o "$dir/go/echo" ./echo) || die "go build failed" ;;
    node)
      command -v node >/dev/null || die "node not found (or use --peers without node)" ;;
    *) die "unknown peer $1 (libuv, erlang, go, node)" ;;
  esac
}

# Sets CMD to the command line of server $1 on port $2.
command_for() {
  case $1 in
    troupe) CMD=("$BUILD/bench/echo_server" "--port=$2") ;;
    libuv) CMD=("$BUILD/bench/echo_uv" "$2" 2) ;;
    erlang) CMD=(erl +S 2:2 -noshell -pa "$BUILD/bench/peers/erlang" -run echo main "$2") ;;
    go) CMD=(env GOMAXPROCS=2 "$BUILD/bench/peers/go/echo" "$2") ;;
    node) CMD=(node "$HERE/peers/node/echo.js" "$2") ;;
  esac
}

# --- one measurement ----------------------------------------------------
RAW=$(mktemp)
SERVER_OUT=$(mktemp)
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
  rm -f "$RAW" "$SERVER_OUT"
}
trap cleanup EXIT

# Starts server $1 on a fresh port; sets SERVER (pid) and SPORT.
start_server() {
  PORT=$((PORT + 1))
  [ $PORT -lt 32000 ] || PORT=20000
  SPORT=$PORT
  command_for "$1" "$SPORT"
  "${CMD[@]}" >"$SERVER_OUT" 2>&1 &
  SERVER=$!
  for _ in $(seq 100); do
    grep -q '^port ' "$SERVER_OUT" 2>/dev/null && return 0
    kill -0 "$SERVER" 2>/dev/null || break
    sleep 0.05
  done
  echo "  FAILED to start $1: $(tail -3 "$SERVER_OUT")" >&2
  return 1
}

stop_server() {
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  SERVER=
  sleep 0.3 # let TIME_WAIT sockets and the CPU settle
}

# Runs loadgen against server $1 with arguments $3..; records "<impl>
# <case> <figure> <value> <unit>" lines, case = $2.
measure() {
  local impl=$1 case=$2 out rc=0
  shift 2
  start_server "$impl" || { echo "FAILED $impl $case start" >>"$RAW"; return 0; }
  out=$(timeout 120 "$BUILD/bench/loadgen" "--port=$SPORT" "$@" 2>&1) || rc=$?
  stop_server
  if [ $rc -ne 0 ]; then
    echo "  FAILED: $impl $case (exit $rc)" >&2
    echo "$out" | tail -3 | sed 's/^/    /' >&2
    echo "FAILED $impl $case $rc" >>"$RAW"
    return 0
  fi
  echo "$out" | awk -v i="$impl" -v c="$case" \
    '$1 == "RESULT" { print i, c, $2, $3, $4 }' >>"$RAW"
}

measure_idle() {
  local impl=$1 out rc=0
  start_server "$impl" || { echo "FAILED $impl idle start" >>"$RAW"; return 0; }
  sleep 0.5
  out=$(timeout 120 "$BUILD/bench/loadgen" "--port=$SPORT" "--idle=$IDLE" \
        "--pid=$SERVER" 2>&1) || rc=$?
  stop_server
  if [ $rc -ne 0 ]; then
    echo "  FAILED: $impl idle (exit $rc)" >&2
    echo "$out" | tail -3 | sed 's/^/    /' >&2
    echo "FAILED $impl idle $rc" >>"$RAW"
    return 0
  fi
  echo "$out" | awk -v i="$impl" '$1 == "RESULT" { print i, "idle", $2, $3, $4 }' >>"$RAW"
}

# --- the table ----------------------------------------------------------
table() {
  awk -v impls="${IMPLS[*]}" -v conns="${CONNS//,/ }" '
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
      if (v >= 10000) return sprintf("%.1fk", v / 1000)
      if (v >= 100) return sprintf("%.0f", v)
      return sprintf("%.1f", v)
    }
    function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "-" : sprintf("%.2f", a / b) }
    $1 != "FAILED" { vals[$1 " " $2 " " $3] = vals[$1 " " $2 " " $3] " " $4 }
    END {
      ni = split(impls, I, " "); nc = split(conns, C, " ")
      printf "%-24s", "figure"
      for (i = 1; i <= ni; i++) printf " %9s", I[i]
      printf " %12s %13s\n", "troupe/libuv", "troupe/erlang"
      for (k = 1; k <= nc; k++) {
        split("echo.rps echo.p50_us echo.p99_us", F, " ")
        for (f = 1; f <= 3; f++) {
          printf "%-24s", F[f] " @" C[k]
          for (i = 1; i <= ni; i++) m[I[i]] = median(I[i] " c" C[k] " " F[f])
          for (i = 1; i <= ni; i++) printf " %9s", fmt(m[I[i]])
          # Ratios say how many times better Troupe is (rps: higher is
          # better; latency: lower is better).
          if (f == 1) printf " %12s %13s\n", ratio(m["troupe"], m["libuv"]), ratio(m["troupe"], m["erlang"])
          else printf " %12s %13s\n", ratio(m["libuv"], m["troupe"]), ratio(m["erlang"], m["troupe"])
        }
      }
      split("idle_conns.bytes_per_conn idle_conns.kernel_bytes_per_conn", F, " ")
      for (f = 1; f <= 2; f++) {
        printf "%-24s", (f == 1 ? "idle bytes/conn (user)" : "idle bytes/conn (kernel)")
        for (i = 1; i <= ni; i++) printf " %9s", fmt(median(I[i] " idle " F[f]))
        printf " %12s %13s\n", "", ""
      }
    }' "$RAW"
}

# --- main ---------------------------------------------------------------
IMPLS=(troupe)
build_troupe
for p in ${PEERS//,/ }; do
  build_peer "$p"
  IMPLS+=("$p")
done

STAMP=$(date +%Y-%m-%d-%H%M%S)
[ -n "$OUT" ] || { mkdir -p "$HERE/results"; OUT=$HERE/results/net-$STAMP.txt; }
{
  bench_header "Troupe network benchmarks" ", 2 schedulers" erlang go node
  echo "# loadgen: 64-byte echo, closed loop, $THREADS thread(s), ${DURATION}s after 1s warm-up; idle: $IDLE connections"
} >"$OUT.head"

START=$(date +%s)
for ((r = 1; r <= RUNS; r++)); do
  echo "round $r/$RUNS ($(($(date +%s) - START)) s)" >&2
  for c in ${CONNS//,/ }; do
    for i in "${IMPLS[@]}"; do
      measure "$i" "c$c" "--conns=$c" "--duration=$DURATION" "--warmup=1" \
        "--threads=$((THREADS < c ? THREADS : c))"
    done
  done
  if [ "$IDLE" -gt 0 ]; then
    for i in "${IMPLS[@]}"; do
      measure_idle "$i"
    done
  fi
done

bench_save "impl case figure value unit"
if grep -q '^FAILED' "$RAW"; then
  echo "some runs FAILED (see above)" >&2
  exit 1
fi
