#!/usr/bin/env bash
# Create (or reuse) .venv with PyTorch and saliency-widget installed in editable mode.
#   bash scripts/setup.sh          runtime dependencies only
#   bash scripts/setup.sh test     plus test and docs dependencies and Chromium for the browser tests
set -euo pipefail
cd "$(dirname "$0")/.."
want_test="${1:-}"

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python

# PyTorch first, pinned to the builds these machines hold on disk (pip takes them without downloading).
if ! "$VPY" -c "import torch, torchvision" >/dev/null 2>&1; then
  case "$(uname -m)" in
    aarch64|arm64) "$VPY" -m pip install -q torch==2.9.1 torchvision==0.24.1 ;;
    *)             "$VPY" -m pip install -q torch==2.14.1 torchvision==0.29.1 ;;
  esac
fi

if [ "$want_test" = "test" ]; then
  "$VPY" -m pip install -q -e ".[test,docs]"   # docs: CI builds the docs site (tests/docs)
  # Debian's browsers for the browser tests: Chromium (all of them) and Firefox ESR (the interactive export)
  browsers=""
  if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then browsers="chromium"; fi
  if ! command -v firefox-esr >/dev/null 2>&1; then browsers="$browsers firefox-esr"; fi
  if [ -n "$browsers" ]; then
    sudo_=""; [ "$(id -u)" = "0" ] || sudo_="sudo"
    # shellcheck disable=SC2086
    $sudo_ apt-get update -qq && $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $browsers >/dev/null
  fi
  # the JupyterHub smoke test's proxy (npm registry; the machine's Node.js)
  if ! command -v configurable-http-proxy >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    npm install -g --silent configurable-http-proxy@5 >/dev/null 2>&1 || echo "setup: could not install configurable-http-proxy (the JupyterHub smoke test will skip)"
  fi
else
  "$VPY" -m pip install -q -e .
fi
"$VPY" -c "import saliency_widget, torch; print('saliency-widget', saliency_widget.__version__, '| torch', torch.__version__)"
