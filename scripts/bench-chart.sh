#!/usr/bin/env bash
# scripts/bench-chart.sh - draws docs/bench.png from bench/results.tsv:
# for every benchmark, how many times better Troupe does than each peer
# (Erlang, Go, raw libuv, Node.js), as grouped bars on a log scale; above
# the 1x line Troupe is ahead, below it behind. "Better" is higher
# throughput or lower time/memory (the file's `better` column).
#
#   scripts/bench-chart.sh [RESULTS.tsv] [OUT.png]
#
# Needs gnuplot (Debian: gnuplot-nox). Refresh bench/results.tsv from the
# bench/*.md tables after a benchmark run, then run this and commit both.
set -euo pipefail
cd "$(dirname "$0")/.."
IN=${1:-bench/results.tsv}
OUT=${2:-docs/bench.png}
command -v gnuplot >/dev/null || { echo "bench-chart: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 2; }

DATA=$(mktemp /tmp/bench-chart.XXXXXX)
trap 'rm -f "$DATA"' EXIT

# One row per benchmark: label, then Troupe's advantage over each peer
# ("-" where the peer was not measured).
awk -F'\t' '
  /^#/ || $1 == "benchmark" || NF < 8 { next }
  {
    label = $1; gsub("_", " ", label)
    printf "%s", label
    for (i = 5; i <= 8; i++) {
      if ($i == "-" || $i == "" || $4 + 0 == 0) { printf "\t-"; continue }
      r = ($3 == "higher") ? $4 / $i : $i / $4
      printf "\t%.3f", r
    }
    printf "\n"
  }' "$IN" >"$DATA"
[ -s "$DATA" ] || { echo "bench-chart: no rows in $IN" >&2; exit 1; }

gnuplot <<GP
set terminal pngcairo size 1200,560 font "sans,10" noenhanced
set output "$OUT"
set title "Troupe vs peers: times better (higher throughput, or lower latency/memory/time)\n2-vCPU VM, medians; bench/NET.md, bench/README.md, bench/SERVICES.md"
set datafile separator "\t"
set datafile missing "-"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y 2
set yrange [0.25:32]
set ytics ("1/4x" 0.25, "1/2x" 0.5, "1x" 1, "2x" 2, "4x" 4, "8x" 8, "16x" 16, "32x" 32)
set grid ytics
set xtics rotate by -30 left
set key top right
set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 lc rgb "#333333"
set bmargin 6
plot "$DATA" using 2:xtic(1) title "vs Erlang/OTP 25" lc rgb "#a2195b", \
     "" using 3 title "vs Go 1.19" lc rgb "#00add8", \
     "" using 4 title "vs raw libuv (C)" lc rgb "#7f7f7f", \
     "" using 5 title "vs Node.js 20" lc rgb "#3c873a"
GP
echo "bench-chart: wrote $OUT from $IN ($(wc -l <"$DATA") benchmarks)"
