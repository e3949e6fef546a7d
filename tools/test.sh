#!/usr/bin/env bash
# The project's one test command (README, .ci/run): installs what the tests need, then checks that
#   1. brain2image/ is exactly what nbs/ exports,   2. notebooks are committed clean and light,
#   3. README.md is current with nbs/index.ipynb,   4. ruff finds no errors (ruff.toml),
#   5. every notebook runs once (slow cells included), executed copies kept in _build/executed/,
#   6. the docs site _site/ builds from them,   7. pytest passes on the package as a user imports it.
set -euo pipefail
cd "$(dirname "$0")/.."
export MPLBACKEND=Agg PYTHONHASHSEED=0
step() { printf '\n=== %s\n' "$*"; }

step "install (pip install -e .[dev])"
python -m pip install -q --disable-pip-version-check -e ".[dev]"

step "browser for tests/test_browser.py (Debian chromium + playwright)"
bash tools/browser_setup.sh || [ "${BRAIN2IMAGE_REQUIRE_BROWSER:-0}" != 1 ]

step "nbdev_export leaves brain2image/ unchanged"
python tools/check_tree.py export

step "notebooks are clean (nbdev_clean) and light"
python tools/check_tree.py clean

step "README.md is current with nbs/index.ipynb"
python tools/check_tree.py readme

step "ruff check . (errors: syntax, undefined names, unused imports; see ruff.toml)"
ruff check .

step "every notebook runs once (slow cells included) -> _build/executed/"
# as nbdev_test runs them; two notebooks at once on 2 cores: one torch thread each, or they oversubscribe the CPU (5-20x slower)
OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" python tools/run_notebooks.py --flags "${NBDEV_TEST_FLAGS:-slow}" --workers "${NBDEV_TEST_WORKERS:-2}"

step "docs site (_site/ from the executed notebooks; fails if a page is missing)"
python tools/build_docs.py --no-exec

step "pytest"
BRAIN2IMAGE_SLOW="${BRAIN2IMAGE_SLOW:-1}" python -m pytest -q -p no:cacheprovider tests "$@"
