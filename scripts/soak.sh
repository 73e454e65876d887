#!/usr/bin/env bash
# scripts/soak.sh - the long soak: troupe-demo under mixed load (echo and
# chat clients with sequence numbers, HTTP, connection churn, console
# commands, a chaos thread killing connections and the chat room) for
# MINUTES, then a plot of the server's RSS and descriptors.
#
#   scripts/soak.sh [MINUTES]        (default 30)
#
# Builds Release into $TP_SOAK_BUILD (default build/release), writes the
# samples (one row a second) to <build>/soak-<minutes>m.csv and the plot to
# $TP_SOAK_PNG (default docs/soak.png). Exits non-zero when a check fails
# (see tests/soak/soak.c). CI runs the same test for 120 s (ctest -L soak).
set -euo pipefail
cd "$(dirname "$0")/.."
MIN=${1:-30}
BUILD=${TP_SOAK_BUILD:-build/release}
PNG=${TP_SOAK_PNG:-docs/soak.png}

cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTP_WERROR=ON >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target soak >/dev/null
csv=$PWD/$BUILD/soak-${MIN}m.csv
rc=0
TP_SOAK_SECONDS=$((MIN * 60)) TP_SOAK_CSV=$csv "$BUILD/tests/soak" || rc=$?
bash scripts/plot-soak.sh "$csv" "$PNG" \
  "Troupe soak: troupe-demo, ${MIN} min, mixed load + chaos"
exit $rc
