#!/usr/bin/env bash
# The README's test command: sets up dependencies, then builds and runs
# every test Troupe has (the CI runs exactly this):
#   1. Release build, warnings as errors: all default tests (unit, stress,
#      net, console, sample, short scale/soak), clang-format check
#   2. AddressSanitizer + UBSan build: unit and stress tests
#   3. ThreadSanitizer build: unit and stress tests
#   4. Static analysis and short fuzzing, where those parts exist
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=$(nproc)

bash scripts/setup-deps.sh --test

T0=$SECONDS
step() { echo; echo "=== $* === (at $((SECONDS - T0)) s)"; }

step "clang-format check"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
clang-format --dry-run --Werror $files
echo "formatted: $(echo "$files" | wc -w) files"

step "Release build (-Werror) and tests"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DTP_WERROR=ON >/dev/null
cmake --build build/release -j "$JOBS"
(cd build/release && ctest --output-on-failure -j "$JOBS" -LE 'long')

step "ASan+UBSan build: unit and stress tests"
CC=clang cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTP_SANITIZE=address -DTP_ASSERTS=ON -DTP_WERROR=ON -DTP_BUILD_BENCH=OFF \
  -DTP_BUILD_SAMPLES=OFF >/dev/null
cmake --build build/asan -j "$JOBS"
(cd build/asan && TP_TEST_SLOW=3 ctest --output-on-failure -j2 -L 'unit|stress|net|console' -LE 'long|browser')

step "TSan build: unit and stress tests"
CC=clang cmake -S . -B build/tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTP_SANITIZE=thread -DTP_ASSERTS=ON -DTP_WERROR=ON -DTP_BUILD_BENCH=OFF \
  -DTP_BUILD_SAMPLES=OFF >/dev/null
cmake --build build/tsan -j "$JOBS"
(cd build/tsan && TP_TEST_SLOW=5 ctest --output-on-failure -L 'unit|stress|net|console' -LE 'notsan|long|browser')

for extra in scripts/test-*.part.sh; do
  [ -f "$extra" ] || continue
  step "$(basename "$extra" .part.sh)"
  bash "$extra"
done

echo
echo "ALL TESTS PASSED in $((SECONDS - T0)) s"
