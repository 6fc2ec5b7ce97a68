#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the browser tests; install it
# when we can (root + apt-get), otherwise fail loudly (never skip silently).
set -euo pipefail

[ -x /usr/bin/chromium ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    echo "ensure-chromium: installing chromium with apt-get..." >&2
    if ! { apt-get update -qq &&
           DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
               chromium fonts-dejavu-core; } >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        echo "ensure-chromium: apt-get failed to install chromium (log tail above)." >&2
        exit 1
    fi
    if [ ! -x /usr/bin/chromium ]; then
        echo "ensure-chromium: apt-get succeeded but /usr/bin/chromium is still missing." >&2
        exit 1
    fi
    exit 0
fi

echo "Browser tests need Debian's chromium at /usr/bin/chromium: install it as root with 'apt-get install chromium'." >&2
exit 1
