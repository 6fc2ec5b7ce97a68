#!/usr/bin/env bash
# WeasyPrint (the bill PDFs) draws text with Pango, which pip cannot install:
# make sure the OS has it before the virtualenv is built. Installed when we can
# (root + apt-get), otherwise a clear sentence instead of an OSError at import.
set -euo pipefail

PYTHON=${1:-python3}
have_pango() {
    "$PYTHON" -c 'import ctypes.util, sys; sys.exit(0 if all(ctypes.util.find_library(n) for n in ("pango-1.0", "pangoft2-1.0", "harfbuzz", "fontconfig")) else 1)'
}

have_pango && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    echo "ensure-pango: installing Pango with apt-get (WeasyPrint needs it for the bill PDFs)..." >&2
    if ! { apt-get update -qq &&
           DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
               libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libfontconfig1; } >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        echo "ensure-pango: apt-get failed to install Pango (log tail above)." >&2
        exit 1
    fi
    have_pango && exit 0
    echo "ensure-pango: apt-get succeeded but Pango is still not found." >&2
    exit 1
fi

echo "Selfcare needs Pango for the bill PDFs (WeasyPrint): on Debian or Ubuntu, 'apt-get install libpango-1.0-0 libpangoft2-1.0-0'; on macOS, 'brew install pango'." >&2
exit 1
