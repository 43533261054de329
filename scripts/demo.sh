#!/usr/bin/env bash
# Open the saliency-widget quickstart notebook in JupyterLab.
#
#   ./scripts/demo.sh                 # creates/uses .venv, installs the package, starts Lab
#   ./scripts/demo.sh --no-browser    # extra arguments go to `jupyter lab`
#   ./scripts/demo.sh --headless [DIR] # no browser here: write the explorer view and a report to DIR
#
# Environment: PYTHON (default python3) picks the interpreter used to create .venv.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

# .venv with the pinned PyTorch build and this package (editable: the widget loads js/ from here).
bash scripts/setup.sh 2>&1 | grep -v "^WARNING: Location" || true
if ! .venv/bin/python -c "import jupyterlab" 2>/dev/null; then
  # quiet unless it fails: pip's "WARNING: Location ... is ignored" lines are noise here
  .venv/bin/python -m pip install -q "jupyterlab>=4" 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import jupyterlab" || { echo "installing JupyterLab failed" >&2; exit 1; }
fi

if [ "${1:-}" = "--headless" ]; then
  # No browser on this machine: render the main view of the bundled model and image to files.
  out="${2:-demo-output}"
  mkdir -p "$out"
  .venv/bin/saliency-widget render sample:shapes_cross_ring sample:shapes_star --out "$out/report.html"
  .venv/bin/saliency-widget render sample:shapes_cross_ring sample:shapes_star --out "$out/grid.png"
  .venv/bin/python - "$out" <<'PY'
import sys
from saliency_widget.widget import explore
w = explore()                      # the bundled model and image, as the notebook opens it
w.wait(120)
w.to_png(f"{sys.argv[1]}/explorer.png")
w.to_html(f"{sys.argv[1]}/explorer.html")
print(w.status)
w.close()
PY
  echo "wrote $out/report.html, $out/grid.png, $out/explorer.png, $out/explorer.html"
  exit 0
fi

args=()
if [ "$(id -u)" = "0" ]; then
  args+=(--allow-root)  # JupyterLab refuses to run as root without it
fi

exec .venv/bin/jupyter lab "${args[@]}" "$@" example_notebooks/01_quickstart.ipynb
