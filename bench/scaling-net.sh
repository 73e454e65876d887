#!/usr/bin/env bash
# bench/scaling-net.sh - echo throughput at several scheduler counts, Troupe
# next to the raw libuv server with the same number of loops: does the
# network path scale with cores?
#
#   bench/scaling-net.sh --bin DIR [--schedulers 1,2,4,8] [--conns 1000]
#                        [--duration 4] [-n RUNS] [--lg-cpus 8-15]
#                        [--lg-threads 8]
#
# DIR holds echo_server, echo_uv and loadgen (a build's bench/ folder).
# For every count S the server runs on cores 0..S-1 (Troupe pins scheduler
# i to core i; echo_uv is confined there with taskset) and the load
# generator on --lg-cpus, so the two never share a core: on a 16-core
# machine keep S <= 8. Prints one line per run
#   RAW <impl> <S> <req/s> <p99 us>
# and a table of medians (req/s, p99 and troupe/libuv ratio) per S.
set -euo pipefail
BIN= SCHEDS=1,2,4,8 CONNS=1000 DUR=4 RUNS=3 LGCPUS=8-15 LGT=8
die() { echo "scaling-net.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --bin) BIN=$2; shift 2 ;;
    --schedulers) SCHEDS=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --duration) DUR=$2; shift 2 ;;
    -n) RUNS=$2; shift 2 ;;
    --lg-cpus) LGCPUS=$2; shift 2 ;;
    --lg-threads) LGT=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1" ;;
  esac
done
[ -x "$BIN/echo_server" ] && [ -x "$BIN/echo_uv" ] && [ -x "$BIN/loadgen" ] ||
  die "--bin DIR must hold echo_server, echo_uv and loadgen"
command -v taskset >/dev/null || die "taskset not found (util-linux)"

SERVER=
OUTF=$(mktemp)
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
  rm -f "$OUTF"
}
trap cleanup EXIT

# Starts server $1 with $2 schedulers/loops; sets SERVER and PORT.
start() {
  if [ "$1" = troupe ]; then
    "$BIN/echo_server" --port=0 "--schedulers=$2" >"$OUTF" 2>&1 &
  else
    # echo_uv needs a fixed port (each loop binds it with SO_REUSEPORT).
    taskset -c "0-$(($2 - 1))" "$BIN/echo_uv" $((20000 + RANDOM % 30000)) \
      "$2" >"$OUTF" 2>&1 &
  fi
  SERVER=$!
  for _ in $(seq 100); do
    PORT=$(awk '$1 == "port" { print $2; exit }' "$OUTF")
    [ -n "$PORT" ] && return 0
    sleep 0.05
  done
  die "$1 did not print its port"
}

stop() { kill -TERM "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=; }

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

declare -A RPS P99
for s in ${SCHEDS//,/ }; do
  for impl in troupe libuv; do
    rps=() p99=()
    for _ in $(seq "$RUNS"); do
      start "$impl" "$s"
      out=$(taskset -c "$LGCPUS" "$BIN/loadgen" "--port=$PORT" \
        "--conns=$CONNS" "--threads=$LGT" "--duration=$DUR" --warmup=1)
      stop
      r=$(echo "$out" | awk '$2 == "echo.rps" { print $3 }')
      p=$(echo "$out" | awk '$2 == "echo.p99_us" { print $3 }')
      echo "RAW $impl $s $r $p"
      rps+=("$r") p99+=("$p")
    done
    RPS[$impl.$s]=$(printf '%s\n' "${rps[@]}" | median)
    P99[$impl.$s]=$(printf '%s\n' "${p99[@]}" | median)
  done
done

echo
echo "# echo, 64-byte messages, $CONNS connections, loadgen $LGT threads on cpus $LGCPUS; medians of $RUNS"
printf '%-11s %14s %12s %14s %12s %8s\n' schedulers troupe_rps troupe_p99 libuv_rps libuv_p99 ratio
for s in ${SCHEDS//,/ }; do
  printf '%-11s %14.0f %12.0f %14.0f %12.0f %8.2f\n' "$s" "${RPS[troupe.$s]}" \
    "${P99[troupe.$s]}" "${RPS[libuv.$s]}" "${P99[libuv.$s]}" \
    "$(awk -v a="${RPS[troupe.$s]}" -v b="${RPS[libuv.$s]}" 'BEGIN { print a / b }')"
done
