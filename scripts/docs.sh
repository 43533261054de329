#!/usr/bin/env bash
# Build the docs site offline: docs/_build/html/index.html (open it from file://, nothing loads from the network).
#   bash scripts/docs.sh            executes the example notebooks, builds the interactive report (and the atlas,
#                                   when the `saliency-widget atlas` command exists), then runs Sphinx
#   DOCS_REUSE=1 bash scripts/docs.sh   keeps the built report and atlas (for editing pages); executed notebooks are kept
#                                   anyway while they are newer than the notebook and the package (docs_notebooks.py)
# Needs the docs extra: .venv/bin/pip install -e ".[docs]" (scripts/setup.sh test installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
if ! "$PY" -c "import sphinx, myst_nb, furo" 2>/dev/null; then
  echo "docs: Sphinx, MyST-NB or Furo is missing; install the docs extra: .venv/bin/pip install -e '.[docs]'" >&2
  exit 1
fi
export PYDEVD_DISABLE_FILE_VALIDATION=1
t0=$(date +%s)
gen=docs/_generated
mkdir -p "$gen/extra/report"

# 1. the example notebooks, executed (their saved widget views are what the pages show)
"$PY" scripts/docs_notebooks.py --out "$gen/executed" --site "$gen/notebooks" --jobs "${DOCS_JOBS:-2}"

# 2. one interactive report on the bundled model, embedded by docs/embedded.md
REPORT_METHODS=gradient,deconvnet,guided_backprop,gradcam,guided_gradcam,occlusion
if [ "${DOCS_REUSE:-}" != "1" ] || [ ! -f "$gen/extra/report/star.html" ]; then
  # (six methods and one layer keep CI's build short; the page says so)
  "$PY" -m saliency_widget.cli render sample:shapes_star --interactive --methods "$REPORT_METHODS" \
    --layers features.relu5 --out "$gen/extra/report/star.html" | tail -1
fi

# 3. the atlas, once its command exists (issue 30's other half); the page embeds it only then
ATLAS_LAYERS=features.relu3,features.relu5
tags=()
if "$PY" -m saliency_widget.cli atlas --help >/dev/null 2>&1; then tags=(-t atlas); fi

# 4. the site
"$PY" -m sphinx -b html -q docs docs/_build/html "${tags[@]}"
if [ ${#tags[@]} -gt 0 ] && { [ "${DOCS_REUSE:-}" != "1" ] || [ ! -f docs/_build/html/atlas/index.html ]; }; then
  # 256 scenes, two layers; 8 filters each with 32-step visualizations keep CI's build short (the page says so)
  rm -rf docs/_build/html/atlas
  "$PY" -m saliency_widget.cli atlas --model shapes --data sample:shapes --limit 256 --layers "$ATLAS_LAYERS" \
    --channels "${DOCS_ATLAS_CHANNELS:-0-7}" --steps "${DOCS_ATLAS_STEPS:-32}" --quiet --out docs/_build/html/atlas | tail -1
fi
echo "docs: docs/_build/html/index.html built in $(( $(date +%s) - t0 )) s ($(du -sh docs/_build/html | cut -f1))"
