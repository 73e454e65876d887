#!/usr/bin/env bash
# Installs everything Troupe needs to build, test and run its demo on a
# fresh Debian 12 (run as root). Idempotent; skips apt when all is present.
set -euo pipefail

PKGS=(build-essential cmake pkg-config clang clang-format clang-tidy
      libclang-rt-14-dev libuv1-dev libck-dev libmsgpack-dev libcmocka-dev
      libhttp-parser-dev valgrind cppcheck curl netcat-openbsd socat
      python3 gnuplot-nox)
if [ "${TP_SETUP_FULL:-0}" = 1 ]; then
  PKGS+=(chromium erlang-nox golang-go nodejs wrk doxygen)
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
    || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "setup: dependencies present"
