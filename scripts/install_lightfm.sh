#!/usr/bin/env bash
# Build LightFM 1.17 from its PyPI source release into .venv (optional: the `lightfm` baseline).
# Its setup.py sets a flag through `__builtins__`, which is a dict when setuptools runs it, so a plain
# `pip install lightfm` fails with "'dict' object has no attribute '__LIGHTFM_SETUP__'"; we patch that line.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$PY - "$tmp" <<'PYEOF'
import re, sys, urllib.request
index = urllib.request.urlopen("https://pypi.org/simple/lightfm/", timeout=60).read().decode()
url = re.findall(r'href="([^"]*lightfm-1\.17\.tar\.gz)[^"]*"', index)[0]
urllib.request.urlretrieve(url, f"{sys.argv[1]}/lightfm.tar.gz")
PYEOF
tar -xzf "$tmp/lightfm.tar.gz" -C "$tmp"
src=$(find "$tmp" -maxdepth 1 -type d -name 'lightfm-*' | head -1)
sed -i 's/__builtins__.__LIGHTFM_SETUP__ = True/import builtins; builtins.__LIGHTFM_SETUP__ = True/' "$src/setup.py"
$PY -m pip install -q --no-build-isolation "$src"
$PY -c "import lightfm; print('lightfm', lightfm.__version__, 'installed')"
