#!/usr/bin/env bash
# Installs what Troupe needs on a fresh Debian 12 (run as root).
#   setup-deps.sh          build and run (the demo)
#   setup-deps.sh --test   also what the tests need: clang runtimes for the
#                          sanitizers and fuzzing, valgrind, cppcheck,
#                          clang-tidy, chromium + Node.js for the
#                          dashboard's browser test, nats-server and
#                          haproxy for the fleet's, Node's ws package
#                          (tests/node, pinned: npm ci) for test_ws_node
#   TP_SETUP_FULL=1        also the benchmark peers (Erlang, Go, wrk)
# Idempotent: skips apt when everything is present.
set -euo pipefail

PKGS=(build-essential cmake pkg-config libuv1-dev libck-dev libmsgpack-dev
      libcmocka-dev libhttp-parser-dev netcat-openbsd socat curl
      libssl-dev openssl libwslay-dev libnats-dev nats-server)
if [ "${1:-}" = "--test" ]; then
  PKGS+=(clang clang-format clang-tidy libclang-rt-14-dev valgrind cppcheck
         gnuplot-nox python3 chromium doxygen man-db)
  # The fleet's tests (scripts/fleet.sh): a NATS server for the cluster,
  # HAProxy in front of the nodes.
  # The cluster's partition tests: ip netns + veth (iproute2); TLS and
  # WebSocket tests: real clients (openssl s_client, python3-websockets).
  PKGS+=(nats-server haproxy iproute2 python3-websockets)
  # Node.js (with npm) may come from elsewhere (e.g. nodesource): only
  # install Debian's when there is none.
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
    || PKGS+=(nodejs npm)
fi
if [ "${TP_SETUP_FULL:-0}" = 1 ]; then
  PKGS+=(erlang-nox golang-go wrk doxygen gnuplot-nox)
  # bench/peers/go/wsecho (GOPATH=/usr/share/gocode, see bench/WS.md).
  PKGS+=(golang-github-gorilla-websocket-dev)
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
    || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "setup: dependencies present"
# Node's ws for the WebSocket tests and bench: the versions pinned in
# tests/node/package-lock.json. Without the npm registry the set-up goes
# on and test_ws_node reports SKIP with the reason.
nodedir="$(cd "$(dirname "$0")/.." && pwd)/tests/node"
if [ "${1:-}" = "--test" ] && [ ! -f "$nodedir/node_modules/ws/package.json" ]; then
  timeout 300 npm ci --prefix "$nodedir" --no-audit --no-fund --loglevel=error \
    >/dev/null 2>&1 \
    || echo "setup: npm ci --prefix tests/node failed (no registry?): test_ws_node will skip"
fi
