#!/usr/bin/env bash
# scripts/fleet.sh - a fleet on this machine: K troupe-fleet-node processes
# holding N idle, supervised, named connections from M fleet_client
# processes, with a nats-server for the cluster (see docs/FLEET.md).
#
#   scripts/fleet.sh [--conns N] [--nodes K] [--clients M] [--send S]
#                    [--haproxy] [--proxy] [--short] [--no-kill]
#                    [--build DIR] [--keep] [--quiet]
#
#   --conns N    connections to hold (default 200000)
#   --nodes K    node processes (default: enough that K-1 of them hold N
#                at 19,000 each, so one can be killed)
#   --clients M  client processes (default: N / 19,000, rounded up)
#   --send S     messages to S random connections, checked exactly once
#                (default 1000; 0: none)
#   --haproxy    the nodes behind one HAProxy (each on its own port)
#                instead of one SO_REUSEPORT port; checks the spread and a
#                drain (`troupectl drain`: HAProxy marks the node down
#                before the node closes its connections). One HAProxy
#                holds at most ~9,000 connections within 20,000 fds.
#   --proxy      with --haproxy: send-proxy-v2 to the nodes, which parse
#                the PROXY headers (--proxy-protocol); checks that the
#                nodes see the clients' own addresses
#   --short      the CI version: 3 nodes x 2,000 connections (with
#                --haproxy: 2 nodes, 2,000 connections)
#   --no-kill    skip the SIGKILL of a node
#   --no-cluster the nodes do not join a cluster: names are node-local and
#                each SEND goes through a connection to the name's node
#                (default: clustered over the nats-server this script
#                starts; all SENDs go through one connection, to one node,
#                and reach names held on any node)
#   --keep       keep the work directory (logs, status files)
#   --node-args "A B"  more troupe-fleet-node options (e.g. its
#                measurement switches --unsupervised --no-register)
#
# Without --haproxy: waits until every connection is held and named,
# prints the figures, sends S messages by name and checks each reached
# its connection's client exactly once, SIGKILLs one node and checks that
# only its connections dropped and that the clients re-homed them on the
# others, then stops everything. Lines "RESULT <name> <value> <unit>"
# carry the figures (bench/FLEET.md). Exit status 0 only if every check
# passed. Everything started is stopped and the work directory removed on
# exit, failures included.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=200000 NODES=0 CLIENTS=0 SEND=1000 HAPROXY=0 PROXY=0 SHORT=0
KILL=1 BUILD=build/release KEEP=0 QUIET=0 NODE_ARGS= CLUSTER=1
while [ $# -gt 0 ]; do
  case "$1" in
    --conns) CONNS=$2; shift ;;
    --nodes) NODES=$2; shift ;;
    --clients) CLIENTS=$2; shift ;;
    --send) SEND=$2; shift ;;
    --haproxy) HAPROXY=1 ;;
    --proxy) PROXY=1 ;;
    --short) SHORT=1 ;;
    --no-kill) KILL=0 ;;
    --no-cluster) CLUSTER=0 ;;
    --build) BUILD=$2; shift ;;
    --node-args) NODE_ARGS=$2; shift ;;
    --keep) KEEP=1 ;;
    --quiet) QUIET=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "fleet.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

PER_NODE=19000   # connections a node may hold (20,000 fds per process)
PER_CLIENT=19000 # connections a client process holds at most
SLOW=${TP_TEST_SLOW:-1}
if [ "$SHORT" = 1 ]; then
  CONNS=6000 SEND=200
  [ "$HAPROXY" = 1 ] && CONNS=2000
  [ "$NODES" = 0 ] && NODES=$([ "$HAPROXY" = 1 ] && echo 2 || echo 3)
  [ "$CLIENTS" = 0 ] && CLIENTS=2
fi
if [ "$HAPROXY" = 1 ]; then
  [ "$NODES" = 0 ] && NODES=2
  [ "$CONNS" -le 9000 ] || { echo "fleet.sh: --haproxy holds at most 9,000 connections (one HAProxy, 20,000 fds)" >&2; exit 2; }
  KILL=0
fi
# K-1 nodes must hold N (3 % slack for the kernel's uneven spread).
[ "$NODES" = 0 ] && NODES=$(( (CONNS * 103 / 100 + PER_NODE - 1) / PER_NODE + 1 ))
[ "$CLIENTS" = 0 ] && CLIENTS=$(( (CONNS + PER_CLIENT - 1) / PER_CLIENT ))
[ "$NODES" -ge 2 ] || NODES=2
PER=$(( (CONNS + CLIENTS - 1) / CLIENTS ))
[ "$PER" -le "$PER_CLIENT" ] || { echo "fleet.sh: $PER connections per client: use more --clients" >&2; exit 2; }

NODE_BIN=$BUILD/samples/troupe-fleet-node
CLIENT_BIN=$BUILD/bench/fleet_client
CTL=$BUILD/console/troupectl
for b in "$NODE_BIN" "$CLIENT_BIN" "$CTL"; do
  [ -x "$b" ] || { echo "fleet.sh: $b not built (cmake --build $BUILD)" >&2; exit 2; }
done
command -v nats-server >/dev/null || { echo "fleet.sh: SKIPPED: nats-server not installed (scripts/setup-deps.sh --test)" >&2; exit 77; }
if [ "$HAPROXY" = 1 ]; then
  command -v haproxy >/dev/null || { echo "fleet.sh: SKIPPED: haproxy not installed (scripts/setup-deps.sh --test)" >&2; exit 77; }
  command -v socat >/dev/null || { echo "fleet.sh: SKIPPED: socat not installed (scripts/setup-deps.sh)" >&2; exit 77; }
fi

DIR=$(mktemp -d /tmp/troupe-fleet.XXXXXX)
PIDS=()          # everything we started, stopped on exit
NODE_PIDS=() NODE_PORTS=() NODE_HTTP=()
CLIENT_PIDS=()

log() { [ "$QUIET" = 1 ] || echo "fleet: $*"; }
result() { echo "RESULT $1 $2 $3"; }
fail() {
  echo "fleet: FAILED: $*" >&2
  for f in "$DIR"/*.out; do
    [ -f "$f" ] && { echo "--- tail of $(basename "$f"):" >&2; tail -n 5 "$f" >&2; }
  done
  exit 1
}

cleanup() {
  local rc=$? p
  for p in "${CLIENT_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 1 100); do
    local alive=0
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$KEEP" = 1 ] || { [ "$rc" != 0 ] && [ -n "${TP_FLEET_KEEP_ON_FAIL:-}" ]; }; then
    echo "fleet: work directory kept: $DIR" >&2
  else
    rm -rf "$DIR"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }

# wait_for FILE REGEX SECONDS: until a line of FILE matches.
wait_for() {
  local end=$(( $(now_ms) + $3 * 1000 * SLOW ))
  until grep -qE "$2" "$1" 2>/dev/null; do
    [ "$(now_ms)" -lt "$end" ] || return 1
    sleep 0.05
  done
}

# ---- the pieces -----------------------------------------------------------

start_nats() {
  "$(command -v nats-server)" -a 127.0.0.1 -p -1 -l "$DIR/nats.log" \
    >"$DIR/nats.out" 2>&1 &
  PIDS+=($!)
  wait_for "$DIR/nats.log" "Listening for client connections on" 10 \
    || fail "nats-server did not start"
  NATS_URL=nats://$(grep -oE "connections on [0-9.]+:[0-9]+" "$DIR/nats.log" | awk '{print $3}')
  log "nats-server at $NATS_URL (the cluster will use it: docs/FLEET.md)"
}

# start_node I PORT: node nI listening on PORT (0: any), its console and
# HTTP health port.
start_node() {
  local i=$1 port=$2 delay=0 extra=()
  [ "$HAPROXY" = 1 ] && delay=$(( 3000 * SLOW ))
  [ "$PROXY" = 1 ] && extra+=(--proxy-protocol)
  [ "$CLUSTER" = 1 ] && extra+=(--cluster "$NATS_URL")
  # shellcheck disable=SC2206 # a word list on purpose
  [ -n "$NODE_ARGS" ] && extra+=($NODE_ARGS)
  "$NODE_BIN" --node "n$i" --port "$port" --schedulers 1 \
    --max-conns "$PER_NODE" --console "$DIR/n$i.sock" --http-port 0 \
    --drain-delay "$delay" --stat-ms 250 "${extra[@]}" \
    >"$DIR/n$i.out" 2>"$DIR/n$i.err" &
  PIDS+=($!)
  NODE_PIDS[$i]=$!
  wait_for "$DIR/n$i.out" "^STAT node=" 10 || fail "node n$i did not start: $(tail -n 3 "$DIR/n$i.err")"
  NODE_PORTS[$i]=$(grep -m1 "^READY fleet" "$DIR/n$i.out" | sed 's/.*://')
  NODE_HTTP[$i]=$(grep -m1 "^READY health" "$DIR/n$i.out" | sed -E 's|.*:([0-9]+)/health|\1|')
}

start_nodes() {
  start_node 1 0
  PORT=${NODE_PORTS[1]}
  for i in $(seq 2 "$NODES"); do
    start_node "$i" "$([ "$HAPROXY" = 1 ] && echo 0 || echo "$PORT")"
  done
  log "$NODES nodes on $([ "$HAPROXY" = 1 ] && echo "ports ${NODE_PORTS[*]}" || echo "port $PORT (SO_REUSEPORT)")"
}

start_haproxy() {
  local servers="" sp="" i
  [ "$PROXY" = 1 ] && sp=" send-proxy-v2"
  for i in $(seq 1 "$NODES"); do
    servers+="    server n$i 127.0.0.1:${NODE_PORTS[$i]} check port ${NODE_HTTP[$i]}"$'\n'
  done
  HAPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  # The documented config, with our ports and paths on its marked lines.
  awk -v servers="$servers" -v bind="127.0.0.1:$HAPORT" -v sock="$DIR/haproxy.sock" -v sp="$sp" '
    /# fleet.sh: server$/ { if (!done++) printf "%s", servers; next }
    /# fleet.sh: bind$/ { print "    bind " bind; next }
    /# fleet.sh: stats socket$/ { print "    stats socket " sock " mode 600 level admin"; next }
    /# fleet.sh: default-server$/ { sub(/ # fleet.sh: default-server$/, ""); if (sp == "") sub(/ send-proxy-v2/, ""); print; next }
    { print }' samples/fleet/haproxy.cfg >"$DIR/haproxy.cfg"
  haproxy -c -q -f "$DIR/haproxy.cfg" >"$DIR/haproxy.check" 2>&1 \
    || fail "haproxy rejects the config: $(cat "$DIR/haproxy.check")"
  haproxy -db -f "$DIR/haproxy.cfg" >"$DIR/haproxy.out" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 $(( 100 * SLOW ))); do
    [ -S "$DIR/haproxy.sock" ] && servers_up && break
    sleep 0.1
  done
  servers_up || fail "haproxy did not see the nodes up"
  PORT=$HAPORT
  log "haproxy on port $HAPORT in front of $NODES nodes$sp"
}

# haproxy's view of server nI: its operational state (2 = up, 0 = down).
server_state() {
  echo "show servers state fleet" | socat - "UNIX-CONNECT:$DIR/haproxy.sock" 2>/dev/null \
    | awk -v n="n$1" '$4 == n { print $6 }'
}

servers_up() {
  local i
  for i in $(seq 1 "$NODES"); do
    [ "$(server_state "$i")" = 2 ] || return 1
  done
}

# start_client J COUNT RATE: client cJ with its own source addresses.
start_client() {
  local j=$1 n=$2
  "$CLIENT_BIN" --port "$PORT" --conns "$n" --id "c$j" \
    --src "127.$(( 10 + j )).0.1" --srcs 4 --rate "$3" --inflight 500 \
    --status "$DIR/c$j.status" --report "$DIR/c$j.report" --status-ms 200 \
    >"$DIR/c$j.out" 2>&1 &
  PIDS+=($!)
  CLIENT_PIDS[$j]=$!
}

# ---- reading the state ------------------------------------------------------

# total KEY NODE FILE...: the sum over FILEs of KEY in the last STAT or
# STATUS line of each; with NODE (not ""), KEY holds "N1:C1,N2:C2" and
# NODE's counts are summed. One process however many files: scripts that
# poll must not steal the CPU from the fleet they measure.
total() {
  local key=$1 node=$2
  shift 2
  awk -v k="$key" -v node="$node" '
    /^(STAT|STATUS) / { last[FILENAME] = $0 }
    function count(v,   e, m, j, q, t) {
      if (node == "") return v
      m = split(v, e, ",")
      for (j = 1; j <= m; j++) {
        q = index(e[j], ":")
        if (substr(e[j], 1, q - 1) == node) t += substr(e[j], q + 1)
      }
      return t
    }
    END {
      for (f in last) {
        n = split(last[f], w, " ")
        for (i = 2; i <= n; i++) {
          p = index(w[i], "=")
          if (substr(w[i], 1, p - 1) == k) t += count(substr(w[i], p + 1))
        }
      }
      printf "%.0f\n", t
    }' "$@" 2>/dev/null || echo 0
}

# field FILE KEY: KEY=value from the last STATUS/STAT line of FILE.
field() {
  awk -v k="$2" '/^(STAT|STATUS) / { last = $0 }
    END { n = split(last, w, " ")
      for (i = 2; i <= n; i++) { p = index(w[i], "="); if (substr(w[i], 1, p - 1) == k) print substr(w[i], p + 1) } }' "$1" 2>/dev/null
}

client_files() { local j; for j in "${!CLIENT_PIDS[@]}"; do echo "$DIR/c$j.status"; done; }
node_files() { local i; for i in "${!NODE_PIDS[@]}"; do echo "$DIR/n$i.out"; done; }

# sum KEY: over the clients' status files.
# shellcheck disable=SC2046 # file names without spaces (mktemp)
sum() { total "$1" "" $(client_files); }
# nodes_sum KEY: over the nodes alive.
# shellcheck disable=SC2046
nodes_sum() { total "$1" "" $(node_files); }
# per_node_from_clients NAME: connections the clients hold on node NAME.
# shellcheck disable=SC2046
per_node_from_clients() { total nodes "$1" $(client_files); }
# dropped_from_clients NAME: connections on node NAME the clients lost.
# shellcheck disable=SC2046
dropped_from_clients() { total dropped "$1" $(client_files); }

# wait_named N SECONDS: until the clients hold N named connections.
wait_named() {
  local end=$(( $(now_ms) + $2 * 1000 * SLOW )) next=0 named
  while :; do
    named=$(sum named)
    [ "$named" -ge "$1" ] && return 0
    [ "$(now_ms)" -lt "$end" ] || return 1
    if [ "$(now_ms)" -ge "$next" ]; then
      log "  $named/$1 named (connects $(sum connects), failed $(sum failed), timeouts $(sum timeouts))"
      next=$(( $(now_ms) + 5000 ))
    fi
    sleep 0.2
  done
}

sockstat() { awk -v k="$1" '$1 == "TCP:" { for (i = 2; i < NF; i += 2) if ($i == k) print $(i + 1) }' /proc/net/sockstat; }
# slab_snapshot FILE: bytes in use per slab cache (root reads slabinfo).
slab_snapshot() {
  awk 'NR > 2 { printf "%s %.0f\n", $1, $2 * $4 }' /proc/slabinfo >"$1" 2>/dev/null || : >"$1"
}
# slab_report BEFORE AFTER: the caches that grew most, per connection.
slab_report() {
  awk -v n="$CONNS" 'FNR == NR { a[$1] = $2; next }
    { d = $2 - a[$1]; if (d > 0) printf "%.0f %s\n", d / n, $1 }' "$1" "$2" \
    | sort -rn | head -n 8 | awk '{ printf "%s%s:%s", (NR > 1 ? " " : ""), $2, $1 }'
}
# kB values times 1024 in the shell: mawk's printf %d stops at 2^31.
meminfo() { echo $(( $(awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo) * 1024 )); }
rss_of() { echo $(( $(awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0) * 1024 )); }

# ---- the checks ---------------------------------------------------------------

# Asks every client for its report and waits until each is written.
collect_reports() {
  local j
  for j in "${!CLIENT_PIDS[@]}"; do rm -f "$DIR/c$j.report"; kill -USR1 "${CLIENT_PIDS[$j]}"; done
  for j in "${!CLIENT_PIDS[@]}"; do
    for _ in $(seq 1 $(( 100 * SLOW ))); do [ -f "$DIR/c$j.report" ] && break; sleep 0.05; done
    [ -f "$DIR/c$j.report" ] || fail "client c$j wrote no report"
  done
  cat "$DIR"/c*.report >"$DIR/all.report"
}

# S random named connections get one message each, by name; each client
# must have read its message exactly once, and no one else anything.
check_send() {
  local msgs0 out end
  [ "$SEND" -gt 0 ] || return 0
  collect_reports
  awk '$1 == "NAME" { print $2, $3 }' "$DIR/all.report" | shuf -n "$SEND" \
    | awk '{ print $1, $2, NR }' >"$DIR/targets"
  [ "$(wc -l <"$DIR/targets")" = "$SEND" ] || fail "fewer than $SEND named connections to pick from"
  msgs0=$(sum msgs)
  # Clustered: every SEND through one connection (one node), which finds
  # the name on whichever node holds it. Node-local names (--no-cluster):
  # each SEND through a connection to the node that holds the name.
  local via=()
  [ "$CLUSTER" = 1 ] && via=(--via-one)
  out=$("$CLIENT_BIN" --send "$DIR/targets" --port "$PORT" --tries $(( 100 * NODES + 100 )) "${via[@]}") \
    || fail "send: not every SEND was acknowledged ok: $out"
  end=$(( $(now_ms) + 10000 * SLOW ))
  while [ $(( $(sum msgs) - msgs0 )) -lt "$SEND" ] && [ "$(now_ms)" -lt "$end" ]; do sleep 0.2; done
  sleep 0.3 # a duplicate would show up now
  collect_reports
  awk '
    FNR == NR { want[$1] = $3; n++; next }
    $1 == "RCV" {
      if (!($2 in want)) { printf "fleet: %s got message %s it was not sent\n", $2, $3; bad++ }
      else if ($3 != want[$2] || $4 != 1) { printf "fleet: %s got id %s x%s, want id %s once\n", $2, $3, $4, want[$2]; bad++ }
      else { seen[$2] = 1; m++; print "LAT", $5 }
    }
    END {
      for (k in want) if (!(k in seen)) { printf "fleet: %s never got message %s\n", k, want[k]; bad++ }
      printf "SEND targets=%d exactly_once=%d bad=%d\n", n, m, bad
      exit bad > 0
    }' "$DIR/targets" "$DIR/all.report" >"$DIR/send.check" || { grep -v '^LAT' "$DIR/send.check" >&2; fail "messages by name: not exactly once"; }
  local line once p50 p99
  line=$(grep '^SEND' "$DIR/send.check")
  once=$(echo "$line" | sed -E 's/.*exactly_once=([0-9]+).*/\1/')
  awk '$1 == "LAT" { print $2 }' "$DIR/send.check" | sort -n >"$DIR/lat"
  p50=$(sed -n "$(( (once + 1) / 2 ))p" "$DIR/lat")
  p99=$(sed -n "$(( once * 99 / 100 > 0 ? once * 99 / 100 : 1 ))p" "$DIR/lat")
  log "$line: delivery p50 $p50 us, p99 $p99 us (SEND written -> MSG read)"
  result fleet.send_targets "$SEND" msgs
  result fleet.send_exactly_once "$once" msgs
  result fleet.deliver_p50_us "$p50" us
  result fleet.deliver_p99_us "$p99" us
  [ "$(sum dups)" = 0 ] || fail "a client read a message twice"
}

# SIGKILL one node: only its connections drop, and they come back on the
# others.
check_kill() {
  local v=2 held drops0 t0 rehome j f
  [ "$KILL" = 1 ] || return 0
  held=$(per_node_from_clients "n$v")
  drops0=$(( $(sum drops) + $(sum drain_drops) ))
  [ "$drops0" = 0 ] || fail "$drops0 connections dropped before any node died"
  t0=$(now_ms)
  kill -KILL "${NODE_PIDS[$v]}"
  wait "${NODE_PIDS[$v]}" 2>/dev/null || true
  unset 'NODE_PIDS[$v]'
  log "killed n$v (SIGKILL) holding $held connections"
  wait_dropped "$held" || fail "the clients saw $(sum drops) drops, want $held"
  wait_named "$CONNS" $(( 60 + CONNS / 2000 )) || fail "the connections of n$v were not re-homed"
  rehome=0
  for j in "${!CLIENT_PIDS[@]}"; do
    f=$(field "$DIR/c$j.status" full_at_ms)
    [ "$f" -gt "$t0" ] && [ $(( f - t0 )) -gt "$rehome" ] && rehome=$(( f - t0 ))
  done
  [ "$(sum drops)" = "$held" ] || fail "$(sum drops) connections dropped, n$v held $held"
  [ "$(dropped_from_clients "n$v")" = "$held" ] || fail "drops on other nodes than n$v"
  [ "$(per_node_from_clients "n$v")" = 0 ] || fail "clients still count connections on n$v"
  wait_nodes_hold "$CONNS" || fail "the surviving nodes hold $(nodes_sum conns), want $CONNS"
  log "re-homed $held connections in $rehome ms ($(sum reconnects) reconnects, $(sum failed) refused or failed)"
  if [ "$CLUSTER" = 1 ]; then
    # Every surviving node's directory monitored n$v's: noconnection.
    local i end
    end=$(( $(now_ms) + 15000 * SLOW ))
    for i in "${!NODE_PIDS[@]}"; do
      until grep -q "^STAT node=n$i .* noconn=[1-9]" "$DIR/n$i.out"; do
        [ "$(now_ms)" -lt "$end" ] || fail "n$i never saw n$v's directory down (noconnection)"
        sleep 0.1
      done
    done
    log "every other node saw n$v down: its monitors fired noconnection"
  fi
  result fleet.kill_conns "$held" conns
  result fleet.rehome_ms "$rehome" ms
  result fleet.reconnects "$(sum reconnects)" connects
  result fleet.rehome_conns_per_s $(( held * 1000 / (rehome > 0 ? rehome : 1) )) conns/s
}

wait_dropped() {
  local end=$(( $(now_ms) + 30000 * SLOW ))
  while [ "$(sum drops)" -lt "$1" ] && [ "$(now_ms)" -lt "$end" ]; do sleep 0.1; done
  [ "$(sum drops)" -ge "$1" ]
}

wait_nodes_hold() {
  local end=$(( $(now_ms) + 10000 * SLOW ))
  while [ "$(nodes_sum conns)" != "$1" ] && [ "$(now_ms)" -lt "$end" ]; do sleep 0.2; done
  [ "$(nodes_sum conns)" = "$1" ]
}

# HAProxy: both nodes got a fair share; a drain takes n1 out of rotation
# before n1 closes anything, new connections go to n2 only, and n1's old
# ones then move to n2.
check_haproxy() {
  local h1 h2 end more=500
  [ "$HAPROXY" = 1 ] || return 0
  h1=$(per_node_from_clients n1) h2=$(per_node_from_clients n2)
  log "spread: n1 $h1, n2 $h2"
  if [ "$PROXY" = 1 ]; then
    # send-proxy-v2: the nodes see the clients (127.10.x.y and up), not
    # HAProxy (127.0.0.1).
    local peers
    peers=$("$CTL" -s "$DIR/n1.sock" --json conns -n 1000 2>/dev/null \
      | grep -oE '"peer":"[0-9.]+' | sed 's/"peer":"//' | sort | uniq -c | sort -rn | head -3)
    echo "$peers" | grep -qE ' 127\.(1[0-9]|[2-9][0-9])\.' \
      || fail "with send-proxy-v2 the node does not see the clients' addresses: $peers"
    ! echo "$peers" | grep -qE ' 127\.0\.0\.1$' \
      || fail "a node sees HAProxy's address despite send-proxy-v2: $peers"
    log "PROXY v2: n1 sees the clients' own addresses ($(echo "$peers" | head -1 | awk '{print $2}'), ...)"
  fi
  [ $(( h1 * 100 / CONNS )) -ge 30 ] && [ $(( h2 * 100 / CONNS )) -ge 30 ] \
    || fail "haproxy did not spread the connections (n1 $h1, n2 $h2)"
  "$CTL" -s "$DIR/n1.sock" drain >"$DIR/drain.out" 2>&1 || fail "troupectl drain: $(cat "$DIR/drain.out")"
  end=$(( $(now_ms) + 3000 * SLOW ))
  until [ "$(server_state 1)" = 0 ]; do
    [ "$(now_ms)" -lt "$end" ] || fail "haproxy did not mark n1 down within the drain delay"
    sleep 0.05
  done
  [ "$(field "$DIR/n1.out" conns)" -ge "$h1" ] && [ "$(per_node_from_clients n1)" = "$h1" ] \
    || fail "n1 closed connections before haproxy stopped sending to it"
  log "haproxy marked n1 down; n1 still holds its $h1 connections"
  start_client 9 "$more" 5000
  wait_named $(( CONNS + more )) 60 || fail "new connections were not served"
  [ "$(field "$DIR/c9.status" nodes)" = "n2:$more" ] \
    || fail "new connections went to n1 while it drained: $(field "$DIR/c9.status" nodes)"
  log "all $more new connections went to n2"
  end=$(( $(now_ms) + 30000 * SLOW ))
  until [ "$(per_node_from_clients n1)" = 0 ] && [ "$(sum named)" -ge $(( CONNS + more )) ]; do
    [ "$(now_ms)" -lt "$end" ] || fail "n1's connections did not move to n2"
    sleep 0.1
  done
  [ "$(sum drain_drops)" = "$h1" ] && [ "$(sum drops)" = 0 ] \
    || fail "want $h1 drain closes and no other drop, got $(sum drain_drops) and $(sum drops)"
  [ "$(per_node_from_clients n2)" = $(( CONNS + more )) ] || fail "not all on n2"
  log "n1 drained: its $h1 connections closed after the delay (BYE drain) and reconnected to n2"
  result fleet.haproxy_drained_conns "$h1" conns
}

# ---- the run -------------------------------------------------------------------

log "$CONNS connections, $NODES nodes, $CLIENTS clients ($PER each)$([ "$HAPROXY" = 1 ] && echo ", behind haproxy")"
start_nats
SLAB0=$(meminfo Slab) AVAIL0=$(meminfo MemAvailable) TCPMEM0=$(sockstat mem) INUSE0=$(sockstat inuse)
slab_snapshot "$DIR/slab0"
start_nodes
[ "$HAPROXY" = 1 ] && start_haproxy
NODE_RSS0=$(nodes_sum rss0)
T0=$(now_ms)
left=$CONNS
for j in $(seq 1 "$CLIENTS"); do
  n=$(( left < PER ? left : PER )); left=$(( left - n ))
  start_client "$j" "$n" $(( 60000 / CLIENTS ))
done
wait_named "$CONNS" $(( 60 + CONNS / 1000 )) || fail "only $(sum named) of $CONNS connections named"
T1=$(now_ms)
wait_nodes_hold "$CONNS" || fail "the nodes hold $(nodes_sum conns), the clients $CONNS"
sleep 1 # let the nodes' STAT lines settle
SLAB1=$(meminfo Slab) AVAIL1=$(meminfo MemAvailable) TCPMEM1=$(sockstat mem) INUSE1=$(sockstat inuse)
slab_snapshot "$DIR/slab1"
NODE_RSS1=$(nodes_sum rss)
CLIENT_RSS=0
for j in "${!CLIENT_PIDS[@]}"; do CLIENT_RSS=$(( CLIENT_RSS + $(rss_of "${CLIENT_PIDS[$j]}") )); done
ms=$(( T1 - T0 > 0 ? T1 - T0 : 1 ))
log "held $CONNS supervised, named connections in $ms ms ($(sum failed) refused or failed connects, $(sum timeouts) timed out)"
result fleet.conns "$CONNS" conns
result fleet.nodes "$NODES" processes
result fleet.clients "$CLIENTS" processes
result fleet.connect_ms "$ms" ms
result fleet.connects_per_s $(( CONNS * 1000 / ms )) conns/s
result fleet.connects_per_s_per_node $(( CONNS * 1000 / ms / NODES )) conns/s
result fleet.node_user_bytes_per_conn $(( (NODE_RSS1 - NODE_RSS0) / CONNS )) B
result fleet.client_user_bytes_per_conn $(( CLIENT_RSS / CONNS )) B
result fleet.kernel_slab_bytes_per_conn $(( (SLAB1 - SLAB0) / CONNS )) B
result fleet.kernel_tcp_mem_bytes_per_conn $(( (TCPMEM1 - TCPMEM0) * 4096 / CONNS )) B
result fleet.tcp_sockets_per_conn "$(awk -v a="$INUSE0" -v b="$INUSE1" -v n="$CONNS" 'BEGIN { printf "%.2f", (b - a) / n }')" sockets
result fleet.mem_available_drop_per_conn $(( (AVAIL0 - AVAIL1) / CONNS )) B
echo "fleet: kernel slab caches grown, bytes per connection (both ends): $(slab_report "$DIR/slab0" "$DIR/slab1")"

check_send
check_kill
check_haproxy
log "all checks passed"
