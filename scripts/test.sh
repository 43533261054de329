#!/usr/bin/env bash
# The whole test suite, from a fresh machine: sets up .venv (torch, test deps, Chromium), then pytest.
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -k engine
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import saliency_widget" # setup must have worked
# The house style lasts: lint (pyflakes, pycodestyle, numpy docstrings) and types, before the tests.
.venv/bin/ruff check saliency_widget tests
.venv/bin/mypy
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
