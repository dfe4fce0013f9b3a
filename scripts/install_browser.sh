#!/usr/bin/env bash
# Headless Chromium and the library that drives it, for tests/browser and scripts/browser_screenshots.py.
#
#   bash scripts/install_browser.sh          # `make test-browser` runs it first; idempotent
#
# - Chromium: Debian's `chromium` package (/usr/bin/chromium), installed with apt-get when missing
#   (needs root). KGREC_CHROMIUM=/path/to/chrome uses another build instead and skips apt-get.
# - Playwright for Python (PyPI) into the venv (PY, default .venv/bin/python). Only the library: it drives
#   the system Chromium through `executable_path`; `playwright install` (a browser download) is never run.
set -euo pipefail

cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PLAYWRIGHT_SPEC=${PLAYWRIGHT_SPEC:-'playwright>=1.49,<2'}   # keep equal to the `dev` extra in pyproject.toml
CHROMIUM=${KGREC_CHROMIUM:-/usr/bin/chromium}

if [ -x "$CHROMIUM" ]; then
    echo "chromium: $CHROMIUM ($("$CHROMIUM" --version 2>/dev/null || echo 'version unknown'))"
elif [ -n "${KGREC_CHROMIUM:-}" ]; then
    echo "error: KGREC_CHROMIUM=$KGREC_CHROMIUM is not an executable" >&2
    exit 1
else
    if ! command -v apt-get >/dev/null; then
        echo "error: no $CHROMIUM and no apt-get: install Chromium and set KGREC_CHROMIUM to it" >&2
        exit 1
    fi
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "chromium: installing Debian's chromium package"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
    "$CHROMIUM" --version
fi

if "$PY" -c 'import playwright.sync_api' 2>/dev/null; then
    echo "playwright: $("$PY" -m pip show playwright 2>/dev/null | sed -n 's/^Version: //p') already in $PY"
else
    echo "playwright: installing $PLAYWRIGHT_SPEC into $PY"
    "$PY" -m pip install -q "$PLAYWRIGHT_SPEC"
fi

# A smoke test: the library starts the system Chromium headless and renders a page.
KGREC_CHROMIUM="$CHROMIUM" timeout 120 "$PY" - <<'EOF'
import os
from playwright.sync_api import sync_playwright

with sync_playwright() as pw:
    browser = pw.chromium.launch(executable_path=os.environ["KGREC_CHROMIUM"], headless=True, timeout=60_000,
                                 args=["--headless", "--no-sandbox", "--disable-gpu",
                                       "--disable-background-networking"])
    page = browser.new_page()
    page.set_content("<p id=x>ok</p>")
    assert page.inner_text("#x") == "ok"
    print(f"playwright drives chromium {browser.version}: ok")
    browser.close()
EOF
