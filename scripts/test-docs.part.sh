#!/usr/bin/env bash
# Part of scripts/test-all.sh (the CI): the API reference builds from the
# public headers with Doxygen and every public symbol is documented (the
# warnings log must be empty), and the troupectl man page is well formed.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${TP_DOCS_BUILD:-build/docs}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTP_BUILD_TESTS=OFF \
  -DTP_BUILD_BENCH=OFF -DTP_BUILD_SAMPLES=OFF >/dev/null
cmake --build "$BUILD" --target docs >/dev/null
log=$BUILD/apidoc/warnings.log
if [ -s "$log" ]; then
  echo "test-docs: undocumented or malformed public API:" >&2
  cat "$log" >&2
  exit 1
fi
[ -f "$BUILD/apidoc/html/index.html" ] || { echo "test-docs: no HTML" >&2; exit 1; }
echo "test-docs: API reference: $(ls "$BUILD"/apidoc/html/*.html | wc -l) pages, 0 warnings"
# The man page: groff must format it without warnings.
warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l console/troupectl.1 2>&1 >/dev/null || true)
if [ -n "$warn" ]; then
  echo "test-docs: troupectl.1: $warn" >&2
  exit 1
fi
echo "test-docs: troupectl.1 formats cleanly"
