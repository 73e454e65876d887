#!/usr/bin/env bash
# Part of scripts/test-all.sh (the CI): memcheck over real runs, as a
# second opinion to ASan (uninstrumented code, libuv and ck included).
#   valgrind --leak-check=full: any memory error, and any definitely or
#   indirectly lost block, fails (still-reachable blocks are allowed: the
#   message pool's per-thread caches live as long as their threads).
#
# What runs: core, services, supervisor, network and console tests whose
# assertions do not depend on timing (valgrind serialises threads and runs
# ~20x slower) and that do not crash on purpose (the fault-trap tests
# fault deliberately; direct-style actors: their fixed and copied stacks,
# registered with valgrind, direct/fiber.c); then a sample program, troupe-demo (echo, chat, HTTP
# and the console), driven by a few clients of each kind
# (scripts/valgrind-drive.py) and stopped with SIGINT: it must exit 0 with
# a clean memcheck report.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${TP_VALGRIND_BUILD:-build/valgrind}
JOBS=$(nproc)
VG=(valgrind -q --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite,indirect --error-exitcode=99
    --track-origins=yes --num-callers=30)

command -v valgrind >/dev/null || { echo "valgrind not found" >&2; exit 2; }
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DTP_WERROR=ON \
  -DTP_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD" -j "$JOBS" >/dev/null

failed=0
# Slow timers down for valgrind; each test's own assertions still apply.
export TP_TEST_SLOW=${TP_TEST_SLOW:-10}

run_unit() {
  local t=$1 log="$BUILD/valgrind-$1.log" rc=0
  [ -x "$BUILD/tests/test_$t" ] || return 0
  "${VG[@]}" --log-file="$log.vg" "$BUILD/tests/test_$t" >"$log" 2>&1 || rc=$?
  if [ $rc -ne 0 ] || [ -s "$log.vg" ]; then
    echo "valgrind: test_$t FAILED (exit $rc)" >&2
    tail -20 "$log" >&2
    cat "$log.vg" >&2
    failed=1
  else
    echo "valgrind: test_$t clean ($(grep -c '^\[       OK' "$log") tests)"
  fi
}

for t in actor signals registry mailbox request faults_core pack gen_server \
         sup_strategy sup_api net_echo net_close console_cmds console_http \
         outside direct_net direct_many; do
  run_unit "$t"
done
# The stop path: 200,000 busy actors past a 1 ms deadline, destroy with live
# actors, and 100 (not 1,000: valgrind is ~50x slower) forced stop races.
TP_TEST_SCALE=0.1 run_unit stop

# A sample under memcheck: start, serve, drain on SIGINT, exit 0.
run_sample() {
  local name=$1 log="$BUILD/valgrind-sample-$1.log" sock
  sock=/tmp/tp-vg-$$.sock
  local bin="$BUILD/samples/troupe-$name" rc=0
  [ -x "$bin" ] || return 0
  "${VG[@]}" --log-file="$log.vg" "$bin" --port 0 --schedulers 2 \
    --console "$sock" --http-port 0 >"$log" 2>&1 &
  local pid=$!
  python3 scripts/valgrind-drive.py "$log" "$sock" >"$log.drive" 2>&1 || rc=$?
  kill -INT $pid 2>/dev/null || true
  local code=0
  wait $pid || code=$?
  if [ $rc -ne 0 ] || [ $code -ne 0 ] || [ -s "$log.vg" ]; then
    echo "valgrind: troupe-$name FAILED (clients $rc, exit $code)" >&2
    tail -20 "$log" "$log.drive" >&2
    cat "$log.vg" >&2
    failed=1
  else
    echo "valgrind: troupe-$name clean ($(grep -c '^drive:' "$log.drive") client checks passed, exit 0 after SIGINT)"
  fi
}

run_sample demo

exit $failed
