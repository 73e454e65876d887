#!/usr/bin/env bash
# Part of scripts/test-all.sh (the CI). First checks that the C blocks of
# docs/GUIDE.md are still cut verbatim from docs/examples/guide_*.c (which
# ctest builds and runs). Then the README's demo command, run as a user
# would. `bash scripts/demo.sh` is started in the background; once it
# prints its READY lines the script probes it with `troupectl stats`, the
# HTTP service and the dashboard (/metrics), then sends SIGINT and
# requires exit status 0. Everything is bounded in time; on any failure the
# demo is killed and its output shown.
#   TP_DEMO_ARGS  extra arguments for the demo (default none: the README's
#                 fixed ports 7000, 7001, 8080, 8081 and
#                 /tmp/troupe-demo.sock)
set -euo pipefail
cd "$(dirname "$0")/.."

SOCK=/tmp/troupe-demo.sock
CTL=build/release/console/troupectl
OUT=$(mktemp /tmp/troupe-demo-out.XXXXXX)
PID=

fail() {
  echo "test-samples: $*" >&2
  echo "--- demo output:" >&2
  cat "$OUT" >&2
  exit 1
}
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -KILL "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  rm -f "$OUT"
}
trap cleanup EXIT

# docs/GUIDE.md's C blocks are cut from docs/examples/guide_*.c (which
# the test sample_guide builds and runs): each must still be there verbatim.
python3 - <<'PY' || exit 1
import glob, re, sys
guide = open("docs/GUIDE.md").read()
src = "".join(open(f).read() for f in sorted(glob.glob("docs/examples/guide_*.c")))
stale = [b for b in re.findall(r"```c\n(.*?)```", guide, re.S) if b not in src]
for b in stale:
    print("test-samples: docs/GUIDE.md block not in docs/examples/guide_*.c:\n" + b[:200])
sys.exit(1 if stale else 0)
PY
echo "test-samples: docs/GUIDE.md code matches docs/examples/guide_*.c"

# shellcheck disable=SC2086 # TP_DEMO_ARGS is a word list
bash scripts/demo.sh ${TP_DEMO_ARGS:-} >"$OUT" 2>&1 &
PID=$! # demo.sh execs the demo: the same process

# Setup and a Release build come first: give them a while.
deadline=$((SECONDS + ${TP_DEMO_START_S:-900}))
until grep -q '^READY dashboard ' "$OUT"; do
  kill -0 "$PID" 2>/dev/null || fail "the demo exited before it was ready"
  [ $SECONDS -lt $deadline ] || fail "no READY lines in time"
  sleep 0.2
done
for svc in echo chat http console dashboard; do
  grep -q "^READY $svc " "$OUT" || fail "no READY line for $svc"
done
http=$(sed -n 's/^READY http .*:\([0-9]*\)$/\1/p' "$OUT")
dash=$(sed -n 's|^READY dashboard \(http://[^ ]*\)$|\1|p' "$OUT")
sock=$(sed -n 's/^READY console \(.*\)$/\1/p' "$OUT")
echo "test-samples: demo ready (http port $http, dashboard $dash, console $sock)"

stats=$(timeout 10 "$CTL" -s "$sock" stats) || fail "troupectl stats failed"
grep -q '^actors ' <<<"$stats" || fail "troupectl stats: no actors line: $stats"
echo "test-samples: troupectl stats: $(echo "$stats" | grep -c .) lines"
body=$(curl -fsS --max-time 10 "http://127.0.0.1:$http/json") \
  || fail "curl of the HTTP service failed"
[ "$body" = '{"message":"Hello, World!"}' ] || fail "HTTP /json: $body"
# (into a variable first: grep -q would close the pipe under curl)
metrics=$(curl -fsS --max-time 10 "${dash}metrics") \
  || fail "curl of the dashboard's /metrics failed"
grep -q '^troupe_actors ' <<<"$metrics" \
  || fail "dashboard /metrics has no troupe_actors"
page=$(curl -fsS --max-time 10 "$dash") || fail "curl of the dashboard failed"
grep -qi '<html' <<<"$page" || fail "the dashboard page is not HTML"
echo "test-samples: HTTP service, dashboard and /metrics answer"

kill -INT "$PID"
for _ in $(seq 1 100); do
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$PID" 2>/dev/null && fail "the demo did not exit within 10 s of SIGINT"
rc=0
wait "$PID" || rc=$?
PID=
[ $rc -eq 0 ] || fail "the demo exited with status $rc after SIGINT"
grep -q 'stopped cleanly' "$OUT" || fail "no 'stopped cleanly' line"
[ ! -e "$SOCK" ] || [ "$sock" != "$SOCK" ] \
  || fail "the console socket $SOCK was left behind"
echo "test-samples: SIGINT: drained, exit status 0"
