#!/usr/bin/env bash
# Part of scripts/test-all.sh (the CI): static analysis of the library with
# clang-tidy (.clang-tidy) and cppcheck (.cppcheck-suppressions), through
# the compile database. Any finding fails; a finding is fixed, or, when it
# is a false positive, suppressed with a comment that says why.
#
#   scripts/test-analysis.part.sh            both tools
#   TP_ANALYSIS_TOOLS=cppcheck scripts/...   one of them
#
# Covered: every library folder that exists among common/ mailbox/
# runtime/ actors/ supervisor/ net/ direct/ cluster/ console/, and samples/ (what users copy
# first); tests and benchmarks are not, except for one rule of the tests:
# scripts/check-test-asserts.py (always run first) fails on a cmocka
# assert_*/fail* in an actor, loop or thread callback under tests/ (they
# must use TPT_CHECK*, tests/testutil.h).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${TP_ANALYSIS_BUILD:-build/analysis}
TOOLS=${TP_ANALYSIS_TOOLS:-clang-tidy cppcheck}
DIRS=(common mailbox runtime actors supervisor net direct cluster console samples)

echo "analysis: cmocka asserts off the tests' main thread"
python3 scripts/check-test-asserts.py

# A clang configuration gives a compile database with clang's flags (what
# clang-tidy parses); nothing needs to be built.
CC=clang cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DTP_WERROR=ON \
  -DTP_BUILD_TESTS=OFF -DTP_BUILD_BENCH=OFF -DTP_BUILD_SAMPLES=ON >/dev/null

# The library's (and samples') entries of the database, in $BUILD/lib/.
mkdir -p "$BUILD/lib"
python3 - "$ROOT" "$BUILD/compile_commands.json" \
  "$BUILD/lib/compile_commands.json" "${DIRS[@]}" <<'EOF'
import json, os, sys
root, src, dst, dirs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
keep = [e for e in json.load(open(src))
        if os.path.relpath(e["file"], root).split(os.sep)[0] in dirs
        and e["file"].endswith(".c")]  # not direct/'s assembly
json.dump(keep, open(dst, "w"), indent=1)
print("analysis: %d library files (%s)" % (len(keep), ", ".join(
    sorted({os.path.relpath(e["file"], root).split(os.sep)[0] for e in keep}))))
EOF
mapfile -t FILES < <(python3 -c '
import json, sys
for e in json.load(open(sys.argv[1])): print(e["file"])' \
  "$BUILD/lib/compile_commands.json")

failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

if [[ " $TOOLS " == *" clang-tidy "* ]]; then
  echo "analysis: clang-tidy $(clang-tidy --version | sed -n 's/.*version \([0-9.]*\).*/\1/p' | head -1)"
  # .clang-tidy sets WarningsAsErrors '*': any finding is an error.
  run-clang-tidy -p "$BUILD/lib" -j "$(nproc)" -quiet "${FILES[@]}" \
    >"$out" 2>&1 || true
  if grep -qE '(warning|error):' "$out"; then
    grep -E -A3 '(warning|error):' "$out" | sed 's/\x1b\[[0-9;]*m//g'
    echo "analysis: clang-tidy FAILED: $(grep -cE '(warning|error):' "$out") finding(s)" >&2
    failed=1
  else
    echo "analysis: clang-tidy: 0 findings"
  fi
fi

if [[ " $TOOLS " == *" cppcheck "* ]]; then
  echo "analysis: $(cppcheck --version)"
  mkdir -p "$BUILD/cppcheck"
  # Output is the test: cppcheck's exit code misses its whole-program
  # (ctu) findings when run with -j.
  cppcheck --project="$BUILD/lib/compile_commands.json" \
    --enable=warning,performance,portability,style --inline-suppr \
    --suppressions-list=.cppcheck-suppressions --std=c11 --platform=unix64 \
    -j "$(nproc)" --cppcheck-build-dir="$BUILD/cppcheck" -q \
    --template='{file}:{line}:{column}: {severity}: {message} [{id}]' \
    >"$out" 2>&1 || true
  if [ -s "$out" ]; then
    cat "$out"
    echo "analysis: cppcheck FAILED: $(wc -l <"$out") line(s)" >&2
    failed=1
  else
    echo "analysis: cppcheck: 0 findings"
  fi
fi
exit $failed
