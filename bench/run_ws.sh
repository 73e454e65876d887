#!/usr/bin/env bash
# bench/run_ws.sh - WebSocket echo servers under the same client
# (bench/ws_bench.c): echo messages/s at 100 connections (64-byte text
# messages, all 100 in flight), resident bytes per idle upgraded
# connection (2,000 of them) and the server's CPU time per echo (what a
# message costs it, however the CPUs were shared), Troupe against Node's
# ws (and Go's gorilla/websocket, Python's websockets), the servers
# interleaved in each round; medians of the rounds and the ratios
# Troupe / peer (of the medians, and the median of each round's ratio).
#
#   bench/run_ws.sh [-n RUNS] [--build DIR] [--secs S] [--idle N]
#                   [--peers node,go] [--schedulers N]
#
# Peers: node (bench/peers/node/ws_echo.js, the ws copy pinned in
# tests/node: npm ci --prefix tests/node), go (bench/peers/go/wsecho,
# built against Debian's golang-github-gorilla-websocket-dev), python
# (bench/peers/python/ws_echo.py). Builds ws_bench (Release) into DIR
# (default build/rel) when missing. Prints each run's figures and:
#   ws <server> echo=<msgs/s> idle=<B/conn> cpu=<ns/msg> runs_...=...
#   RESULT ws.<server>.echo_msgs_per_s <median> 1/s  (bench/README.md)
#   ratio troupe/<peer>: ...
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RUNS=3
BUILD=$ROOT/build/rel
SECS=2
IDLE=2000
PEERS=node,go
SCHEDULERS=0

die() { echo "run_ws.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case $1 in
    -n) RUNS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --secs) SECS=$2; shift 2 ;;
    --idle) IDLE=$2; shift 2 ;;
    --peers) PEERS=$2; shift 2 ;;
    --schedulers) SCHEDULERS=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

BIN=$BUILD/bench/ws_bench
if [ ! -x "$BIN" ]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" -j "$(nproc)" --target ws_bench >/dev/null ||
    die "ws_bench build failed"
fi
ulimit -n "$(ulimit -Hn)" # the peers hold $IDLE connections

GOBIN=$BUILD/bench/peers/go/wsecho
for p in ${PEERS//,/ }; do
  case $p in
    node)
      command -v node >/dev/null || die "node not found"
      [ -f "$ROOT/tests/node/node_modules/ws/package.json" ] ||
        die "Node's ws missing: npm ci --prefix tests/node" ;;
    go)
      command -v go >/dev/null || die "go not found (golang-go)"
      [ -d /usr/share/gocode/src/github.com/gorilla/websocket ] ||
        die "gorilla/websocket missing (golang-github-gorilla-websocket-dev)"
      mkdir -p "$(dirname "$GOBIN")"
      (cd "$HERE/peers/go/wsecho" && GO111MODULE=off GOPATH=/usr/share/gocode \
         go build -o "$GOBIN" .) || die "go build failed" ;;
    python)
      /usr/bin/python3 -c 'import websockets' 2>/dev/null ||
        die "python3-websockets missing" ;;
    *) die "unknown peer $p (node, go, python)" ;;
  esac
done

SPID=
OUTF=$(mktemp /tmp/run_ws.XXXXXX)
cleanup() {
  [ -n "$SPID" ] && kill -KILL "$SPID" 2>/dev/null || true
  rm -f "$OUTF"
}
trap cleanup EXIT

PORT=24460
# Starts peer $1 on $PORT; sets SPID.
start_peer() {
  case $1 in
    node) node "$HERE/peers/node/ws_echo.js" "$PORT" >"$OUTF" 2>&1 & ;;
    go) GOMAXPROCS=2 "$GOBIN" "$PORT" >"$OUTF" 2>&1 & ;;
    python) /usr/bin/python3 "$HERE/peers/python/ws_echo.py" "$PORT" >"$OUTF" 2>&1 & ;;
  esac
  SPID=$!
  for _ in $(seq 1 100); do
    grep -q "^port $PORT" "$OUTF" && return 0
    sleep 0.05
  done
  die "$1 peer did not start: $(cat "$OUTF")"
}

stop_peer() {
  kill "$SPID"
  wait "$SPID" 2>/dev/null || true
  SPID=
  PORT=$((PORT + 1))
}

# The figure $2 of ws_bench output $1.
fig() { awk -v n="$2" '$1 == "RESULT" && $2 == n {printf "%d", $3}' <<<"$1"; }
median() { tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

SERVERS="troupe ${PEERS//,/ }"
declare -A ECHO IDLEB CPU PAIRED
echo "run_ws.sh: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $RUNS rounds, ${SECS}s echo, $IDLE idle conns"
for r in $(seq 1 "$RUNS"); do
  for s in $SERVERS; do
    if [ "$s" = troupe ]; then
      out=$("$BIN" --secs="$SECS" --idle="$IDLE" --plain=0 \
              --schedulers="$SCHEDULERS") || die "ws_bench failed (troupe)"
    else
      start_peer "$s"
      out=$("$BIN" --secs="$SECS" --idle="$IDLE" --peer-port="$PORT" \
              --peer-pid="$SPID") || die "ws_bench failed ($s)"
      stop_peer
    fi
    e=$(fig "$out" ws.echo_msgs_per_s)
    i=$(fig "$out" ws.idle_rss_bytes_per_conn)
    c=$(fig "$out" ws.server_cpu_ns_per_msg)
    [ -n "$e" ] && [ -n "$i" ] && [ -n "$c" ] ||
      die "no figures from ws_bench ($s): $out"
    echo "round $r $s echo=$e msgs/s idle_rss=$i B/conn server_cpu=$c ns/msg"
    ECHO[$s]+="$e " IDLEB[$s]+="$i " CPU[$s]+="$c "
    # Troupe's echo rate over this peer's in the same round.
    [ "$s" = troupe ] && te_r=$e ||
      PAIRED[$s]+="$(awk -v a="$te_r" -v b="$e" 'BEGIN {printf "%.3f", a / b}') "
  done
done

echo
te=$(echo ${ECHO[troupe]} | median)
ti=$(echo ${IDLEB[troupe]} | median)
tc=$(echo ${CPU[troupe]} | median)
for s in $SERVERS; do
  e=$(echo ${ECHO[$s]} | median)
  i=$(echo ${IDLEB[$s]} | median)
  c=$(echo ${CPU[$s]} | median)
  echo "ws $s echo=$e idle=$i cpu=$c runs_echo=$(echo ${ECHO[$s]} | tr ' ' ,) runs_idle=$(echo ${IDLEB[$s]} | tr ' ' ,) runs_cpu=$(echo ${CPU[$s]} | tr ' ' ,)"
  echo "RESULT ws.$s.echo_msgs_per_s $e 1/s"
  echo "RESULT ws.$s.idle_rss_bytes_per_conn $i bytes"
  echo "RESULT ws.$s.server_cpu_ns_per_msg $c ns"
  if [ "$s" != troupe ]; then
    p=$(echo ${PAIRED[$s]} | median)
    awk -v te="$te" -v e="$e" -v ti="$ti" -v i="$i" -v tc="$tc" -v c="$c" \
        -v p="$p" -v s="$s" 'BEGIN {
      printf "ratio troupe/%s: echo %.2fx (per round, median %.2fx), idle %.3fx, server cpu per msg %.2fx\n",
             s, te / e, p, (i > 0 ? ti / i : 0), (c > 0 ? tc / c : 0) }'
  fi
done
