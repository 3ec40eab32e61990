#!/usr/bin/env bash
# The keys page in a real browser: Debian's Chromium (installed with apt
# when missing; Playwright's own browser downloads are never used), driven
# by Playwright Test (pinned in package-lock.json) against `make run`, which
# the run starts on ports of its own (API 3300, page 5300) and stops.
# Screenshots of each step: target/browser/screenshots/.
#
#   tests/browser/run.sh [playwright test arguments]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if ! command -v "${CHROMIUM:-chromium}" >/dev/null; then
    echo "browser test: installing Debian's chromium (apt)"
    as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
fi
export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"
"$CHROMIUM" --version 2>/dev/null

PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
rm -rf ../../target/browser/screenshots
exec npx playwright test "$@"
