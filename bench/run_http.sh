#!/usr/bin/env bash
# bench/run_http.sh - the HTTP sample (samples/http, troupe-http) under
# wrk: keep-alive GET / at 1, 100 and 400 connections, one wrk thread,
# 5 s each, median of 3 runs (a fresh server per run).
#
#   bench/run_http.sh [-n RUNS] [--build DIR] [--conns 1,100,400]
#                     [--duration SEC] [--schedulers N] [--path /]
#
# Builds troupe-http (Release) into DIR (default build/rel) when missing.
# Prints one line per run and per connection count:
#   RESULT http.rps.c<N> <median> req/s      (the bench/README.md format)
#   http.rps conns=<N> median=<req/s> runs=<r1,r2,r3> latency_p50=<..>
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RUNS=3
BUILD=$ROOT/build/rel
CONNS=1,100,400
DURATION=5
SCHEDULERS=0
URLPATH=/

die() { echo "run_http.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case $1 in
    -n) RUNS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --schedulers) SCHEDULERS=$2; shift 2 ;;
    --path) URLPATH=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"

BIN=$BUILD/samples/troupe-http
if [ ! -x "$BIN" ]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" -j "$(nproc)" --target troupe-http >/dev/null
fi

SPID=
OUTF=$(mktemp /tmp/run_http.XXXXXX)
cleanup() {
  [ -n "$SPID" ] && kill -KILL "$SPID" 2>/dev/null || true
  rm -f "$OUTF"
}
trap cleanup EXIT

# Starts troupe-http on a free port; sets SPID and PORT.
start_server() {
  "$BIN" --port 0 --schedulers "$SCHEDULERS" >"$OUTF" 2>/dev/null &
  SPID=$!
  for _ in $(seq 1 100); do
    PORT=$(sed -n 's/^READY http .*:\([0-9]*\)$/\1/p' "$OUTF")
    [ -n "$PORT" ] && return 0
    sleep 0.05
  done
  die "troupe-http did not start"
}

stop_server() {
  kill -INT "$SPID"
  wait "$SPID" || die "troupe-http exited with status $? after SIGINT"
  SPID=
}

median() { tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "run_http.sh: $(nproc) CPUs, $(uname -r), wrk -t1 -d${DURATION}s, $RUNS runs, GET $URLPATH"
for c in ${CONNS//,/ }; do
  rps=() lat=()
  for _ in $(seq 1 "$RUNS"); do
    start_server
    out=$(wrk -t1 -c"$c" -d"${DURATION}s" --latency "http://127.0.0.1:$PORT$URLPATH")
    stop_server
    r=$(awk '/^Requests\/sec:/ {printf "%d", $2}' <<<"$out")
    l=$(awk '$1 == "50%" {print $2}' <<<"$out")
    grep -q 'Non-2xx\|Socket errors' <<<"$out" && die "wrk saw errors: $out"
    rps+=("$r") lat+=("$l")
  done
  med=$(echo "${rps[*]}" | median)
  echo "RESULT http.rps.c$c $med req/s"
  echo "http.rps conns=$c median=$med runs=$(IFS=,; echo "${rps[*]}") latency_p50=$(IFS=,; echo "${lat[*]}")"
done
