#!/usr/bin/env bash
# bench/fleet_bench.sh - runs scripts/fleet.sh several times and prints the
# median of every RESULT figure (bench/FLEET.md).
#
#   bench/fleet_bench.sh [-n RUNS] [--out FILE] [fleet.sh options...]
#
# e.g. bench/fleet_bench.sh -n 3 --conns 200000
#      bench/fleet_bench.sh -n 3 --conns 50000 --no-kill --send 0 \
#          --node-args "--unsupervised --no-register"
# Output: the raw RESULT lines of each run, then one line per figure:
#   MEDIAN <name> <median> <unit> (runs: v1 v2 ...)
# and the same into FILE (default bench/results/fleet-<date>.txt). A run
# that fails stops the benchmark (exit 1).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=3 OUT=""
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    -n) RUNS=$2; shift ;;
    --out) OUT=$2; shift ;;
    *) ARGS+=("$1") ;;
  esac
  shift
done
mkdir -p bench/results
OUT=${OUT:-bench/results/fleet-$(date +%Y-%m-%d-%H%M%S).txt}
RAW=$(mktemp /tmp/troupe-fleet-bench.XXXXXX)
trap 'rm -f "$RAW"' EXIT

{
  echo "# scripts/fleet.sh ${ARGS[*]:-}, $RUNS runs (medians)"
  echo "# host: $(uname -sr), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo)"
  echo "# troupe: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT"
for r in $(seq 1 "$RUNS"); do
  echo "== run $r/$RUNS" | tee -a "$OUT"
  if ! bash scripts/fleet.sh --quiet "${ARGS[@]}" >"$RAW.run" 2>&1; then
    cat "$RAW.run" >&2
    echo "fleet_bench: run $r failed" >&2
    exit 1
  fi
  grep '^RESULT' "$RAW.run" | tee -a "$OUT" | sed "s/^/$r /" >>"$RAW"
  grep 'slab caches' "$RAW.run" | tee -a "$OUT" || true
done
echo "# medians" | tee -a "$OUT"
awk '{ k = $3; v[k] = v[k] " " $4; u[k] = $5; if (!(k in seen)) { seen[k] = 1; order[++n] = k } }
  END { for (i = 1; i <= n; i++) print order[i], u[order[i]], v[order[i]] }' "$RAW" |
while read -r name unit values; do
  # shellcheck disable=SC2086 # values: a word list
  med=$(printf '%s\n' $values | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
  echo "MEDIAN $name $med $unit (runs:$(printf ' %s' $values))"
done | tee -a "$OUT"
rm -f "$RAW.run"
echo "fleet_bench: written to $OUT"
