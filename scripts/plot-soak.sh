#!/usr/bin/env bash
# scripts/plot-soak.sh - plots a soak run's samples (the CSV the soak test
# writes, one row a second) as a PNG: resident memory and open file
# descriptors of the server over time, with the load it carried.
#
#   scripts/plot-soak.sh SAMPLES.csv [OUT.png] [TITLE]
#
# Columns used (by name, from the CSV header): t_s, rss_kb, fds, and when
# present conns, req_per_s, crashes, restarts.
set -euo pipefail
csv=${1:?usage: plot-soak.sh SAMPLES.csv [OUT.png] [TITLE]}
out=${2:-docs/soak.png}
title=${3:-Troupe soak}
command -v gnuplot >/dev/null || { echo "plot-soak: gnuplot not found" >&2; exit 2; }

col() { # column number of a header name, or empty
  head -1 "$csv" | tr ',' '\n' | grep -nx "$1" | cut -d: -f1
}
t=$(col t_s); rss=$(col rss_kb); fds=$(col fds)
[ -n "$t" ] && [ -n "$rss" ] && [ -n "$fds" ] ||
  { echo "plot-soak: $csv lacks t_s, rss_kb or fds" >&2; exit 2; }
conns=$(col conns || true); rps=$(col req_per_s || true)
crashes=$(col crashes || true)

load_plot=""
if [ -n "$rps" ]; then
  load_plot="set ylabel 'requests/s'; set y2label 'open connections';
    set ytics nomirror; set y2tics;
    plot '$csv' using $t:$rps with lines lw 1.5 lc rgb '#1f77b4' title 'requests/s' axes x1y1"
  [ -n "$conns" ] && load_plot="$load_plot, '$csv' using $t:$conns with lines lw 1.5 lc rgb '#ff7f0e' title 'connections' axes x1y2"
  [ -n "$crashes" ] && load_plot="$load_plot, '$csv' using $t:$crashes with lines lw 1 lc rgb '#d62728' title 'crashes (total)' axes x1y2"
fi
panels=2; [ -n "$load_plot" ] && panels=3

gnuplot <<GP
set datafile separator ','
set terminal pngcairo size 1100,$((panels * 260 + 60)) font 'DejaVu Sans,10'
set output '$out'
set multiplot layout $panels,1 title '$title'
set grid
set key top left
set xlabel 'time (s)'
set ylabel 'RSS (MiB)'
set yrange [0:*]
plot '$csv' using $t:(\$$rss/1024.0) with lines lw 2 lc rgb '#2ca02c' title 'server RSS'
set ylabel 'open file descriptors'
plot '$csv' using $t:$fds with lines lw 2 lc rgb '#9467bd' title 'server fds'
unset yrange
$load_plot
unset multiplot
GP
echo "plot-soak: wrote $out"
