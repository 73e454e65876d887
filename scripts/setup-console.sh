#!/usr/bin/env bash
# Debian packages the console's tests need (the lead wires this into the
# CI setup). libhttp-parser-dev: the HTTP side (build). chromium + nodejs +
# npm: the dashboard test in a real headless browser (tests/browser/, label
# browser; npm installs playwright-core only, never a browser download).
# socat, netcat-openbsd: the manual checks in docs/CONSOLE.md.
set -euo pipefail
PKGS=(libhttp-parser-dev chromium nodejs npm socat netcat-openbsd)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
    || missing+=("$p")
done
# nodejs from another source may already provide npm.
if command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/npm}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-console: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "setup-console: dependencies present"
