#!/usr/bin/env bash
# A chat across three nodes (docs/GUIDE.md, chapter 8): starts a
# nats-server with JetStream on a free loopback port (its own temporary
# store) and three troupe-chat nodes n1..n3 clustered over it, on ports
# BASE+1..BASE+3 (default 7001..7003; WebSocket on +1000). Connect with
# `nc localhost 7001` (7002, 7003). Ctrl-C stops the nodes and the server
# and removes the store. Builds troupe-chat (Release) first.
#
#   bash scripts/chat-cluster.sh [--base-port 7000] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=7000
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --base-port) BASE=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) sed -n 2,9p "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "chat-cluster.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
command -v nats-server >/dev/null || {
  echo "chat-cluster.sh: nats-server is not installed (bash scripts/setup-deps.sh --test)" >&2
  exit 1
}
if [ "$BUILD" = 1 ]; then
  cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build/release -j "$(nproc)" --target troupe-chat >/dev/null
fi
CHAT=${TP_CHAT:-build/release/samples/troupe-chat}
[ -x "$CHAT" ] || { echo "chat-cluster.sh: $CHAT not built" >&2; exit 1; }

DIR=$(mktemp -d /tmp/troupe-chat-cluster.XXXXXX)
PIDS=()
stop() {
  trap - INT TERM EXIT
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$DIR"
}
trap stop INT TERM EXIT

# -p -1: a free port, read back from the server's log.
nats-server -a 127.0.0.1 -p -1 -js -sd "$DIR/js" -l "$DIR/nats.log" &
PIDS+=($!)
for _ in $(seq 100); do
  grep -q "Server is ready" "$DIR/nats.log" 2>/dev/null && break
  sleep 0.1
done
URL=nats://$(grep -oE "connections on [0-9.]+:[0-9]+" "$DIR/nats.log" | awk '{print $3}')
[ "$URL" != "nats://" ] || { echo "chat-cluster.sh: nats-server did not start (log: $DIR/nats.log)" >&2; exit 1; }
echo "nats-server (JetStream) at $URL"

for i in 1 2 3; do
  "$CHAT" --port $((BASE + i)) --node "n$i" --cluster "$URL" \
    > >(sed -u "s/^/[n$i] /") 2>&1 &
  PIDS+=($!)
done
echo "three chat nodes: nc localhost $((BASE + 1)) / $((BASE + 2)) / $((BASE + 3)); Ctrl-C stops them"
wait
