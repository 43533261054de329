"""Execute the example notebooks for the docs site, in parallel, within a time budget.

    python scripts/docs_notebooks.py [OUT_DIR] [--jobs 2] [--timeout 300] [--force]

Each ``example_notebooks/NN_*.ipynb`` (committed without outputs) runs top to bottom in its own
kernel (nbclient, as ``tests/tools/test_notebooks.py`` runs them) and is written with its outputs
and widget state to ``OUT_DIR``: the explorer's saved view (``saliency_widget.widget.saved``) is
the picture a notebook page shows of the widget. A notebook that fails or runs past ``--timeout``
seconds fails the build with its name, rather than leaving a page without its outputs.
An executed copy newer than its notebook and than every file of the package (``saliency_widget/``,
``js/``) is kept (``--force`` runs it again): ``tests/tools/test_notebooks.py`` executes the notebooks
with this same function into the same folder, so a CI run executes each notebook once, for the tests
and the docs site together, whichever runs first.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "example_notebooks"
EXECUTED = ROOT / "docs" / "_generated" / "notebooks"


def fresh(src: Path, dst: Path) -> bool:
    """Whether ``dst`` (an executed copy of ``src``) is newer than ``src`` and than every file of the package."""
    if not dst.exists():
        return False
    newest = max([src.stat().st_mtime] + [f.stat().st_mtime for d in ("saliency_widget", "js") for f in (ROOT / d).rglob("*")
                                          if f.is_file() and "__pycache__" not in f.parts])
    return dst.stat().st_mtime > newest


def execute(src: Path, dst: Path, timeout: int) -> tuple[str, float, str]:
    """Run ``src`` in a fresh kernel and write it with its outputs to ``dst``; return (name, seconds, error or "")."""
    t0 = time.perf_counter()
    nb = nbformat.read(src, as_version=4)
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(src.parent)}}).execute()
    except Exception as e:  # the build reports every failing notebook, then fails
        return src.name, time.perf_counter() - t0, f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    if errors:
        return src.name, time.perf_counter() - t0, f"{errors[0].get('ename')}: {errors[0].get('evalue')}"
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".tmp")
    nbformat.write(nb, tmp)
    tmp.replace(dst)
    return src.name, time.perf_counter() - t0, ""


def main(argv: list[str] | None = None) -> int:
    """Execute every example notebook into the output folder; return the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, nargs="?", default=EXECUTED, help=f"default {EXECUTED.relative_to(ROOT)}")
    ap.add_argument("--jobs", type=int, default=2, help="notebooks run at once (default 2)")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per cell (default 300)")
    ap.add_argument("--force", action="store_true", help="execute even notebooks whose executed copy is fresh")
    args = ap.parse_args(argv)
    todo = []
    for src in sorted(NOTEBOOKS.glob("*.ipynb")):
        dst = args.out / src.name
        if not args.force and fresh(src, dst):
            print(f"docs: {src.name} already executed (fresh copy kept)", flush=True)
            continue
        todo.append((src, dst))
    t0 = time.perf_counter()
    failed = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for name, secs, err in pool.map(lambda p: execute(p[0], p[1], args.timeout), todo):
            print(f"docs: {name} executed in {secs:.1f} s" + (f": FAILED {err}" if err else ""), flush=True)
            if err:
                failed.append(name)
    print(f"docs: {len(todo)} notebooks in {time.perf_counter() - t0:.1f} s", flush=True)
    if failed:
        print(f"docs: notebooks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
