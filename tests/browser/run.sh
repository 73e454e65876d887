#!/usr/bin/env bash
# The dashboard test (CTest label browser): installs playwright-core from
# npm into tests/browser/node_modules when missing (it never downloads a
# browser: Debian's /usr/bin/chromium is used), then runs the script
# against a freshly started demo server.
#   run.sh DEMO_BINARY OUT_DIR [SCRIPT]
# SCRIPT: dashboard.test.mjs (default), or chat.test.mjs (the browser chat
# against troupe-demo).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
demo="$1"
out="${2:-$PWD}"
script="${3:-dashboard.test.mjs}"
if [ ! -x /usr/bin/chromium ]; then
  echo "browser test: /usr/bin/chromium missing (scripts/setup-deps.sh --test)" >&2
  exit 1
fi
if [ ! -d "$here/node_modules/playwright-core" ]; then
  (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
     npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
mkdir -p "$out"
exec node "$here/$script" "$demo" "$out"
