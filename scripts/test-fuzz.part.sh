#!/usr/bin/env bash
# Part of scripts/test-all.sh (the CI): a short fuzzing run of every
# libFuzzer target (15 s each; scripts/fuzz.sh 600 for a long one).
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/fuzz.sh "${TP_FUZZ_CI_TIME:-15}"
