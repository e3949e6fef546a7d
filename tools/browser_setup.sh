#!/usr/bin/env bash
# Installs what the real-browser widget test (tests/test_browser.py) needs, idempotently:
#   Debian's chromium (/usr/bin/chromium, via apt; needs root or sudo) and the Playwright Python driver.
# No `playwright install`: it downloads its own browsers from the internet, which CI cannot reach;
# the test drives the system chromium through its executable path instead (docs: BROWSER-TEST.md).
set -euo pipefail
CHROMIUM="${BRAIN2IMAGE_CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$CHROMIUM" ]; then
    if [ "$(id -u)" = 0 ]; then SUDO=""
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"
    else
        echo "browser_setup: $CHROMIUM is missing and this user cannot install it." >&2
        echo "  install it with:  sudo apt-get update && sudo apt-get install -y chromium" >&2
        exit 1
    fi
    echo "browser_setup: installing chromium with apt (about 30 s)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
    [ -x "$CHROMIUM" ] || { echo "browser_setup: apt installed chromium but $CHROMIUM is absent" >&2; exit 1; }
fi

if ! python -c 'import playwright' 2>/dev/null; then
    echo "browser_setup: installing playwright (python driver only)"
    python -m pip install -q --disable-pip-version-check 'playwright>=1.40'
fi
python -c 'import playwright' 
echo "browser_setup: ok ($("$CHROMIUM" --version 2>/dev/null | head -1); playwright $(python -m pip show playwright 2>/dev/null | sed -n 's/^Version: //p'))"
