#!/usr/bin/env bash
# The README's demo command: installs dependencies, builds Troupe (Release)
# and runs the demo: echo, chat and HTTP servers under one root supervisor
# with the admin console on (Unix socket + loopback HTTP dashboard).
# Ctrl-C (or SIGTERM) drains connections and exits cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc)" --target troupe-demo troupectl
exec build/release/samples/troupe-demo "$@"
