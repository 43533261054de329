"""Execute the example notebooks for the docs site, in parallel, within a time budget.

    python scripts/docs_notebooks.py [--out DIR] [--site DIR] [--jobs 2] [--timeout 300] [--force]

Each ``example_notebooks/NN_*.ipynb`` (committed without outputs) runs top to bottom in its own
kernel (nbclient, as ``tests/tools/test_notebooks.py`` runs them) and is written with its outputs
and widget state to ``--out`` (docs/_generated/executed). The page's copy (``--site``,
docs/_generated/notebooks) keeps the widget views that the site can draw from their saved state
with the bundled ipywidgets manager (docs/_static/widgets: ipywidgets' own models only, such as
the classroom explorers); a view that needs another front-end module (the explorer's bqplot bars
and anywidget canvases) is dropped, and the explorer's *saved view* (``saliency_widget.widget.saved``),
the picture of its last state, is what the page shows of it. A notebook that fails or runs past ``--timeout``
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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "example_notebooks"
EXECUTED = ROOT / "docs" / "_generated" / "executed"
SITE = ROOT / "docs" / "_generated" / "notebooks"
VIEW = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"
CORE = ("@jupyter-widgets/base", "@jupyter-widgets/controls", "@jupyter-widgets/output")


def fresh(src: Path, dst: Path) -> bool:
    """Whether ``dst`` (an executed copy of ``src``) is newer than ``src`` and than every file of the package."""
    if not dst.exists():
        return False
    newest = max([src.stat().st_mtime] + [f.stat().st_mtime for d in ("saliency_widget", "js") for f in (ROOT / d).rglob("*")
                                          if f.is_file() and "__pycache__" not in f.parts])
    return dst.stat().st_mtime > newest


def _refs(value: Any) -> Iterator[str]:
    """Model ids a widget's state refers to (``"IPY_MODEL_<id>"`` strings, nested anywhere)."""
    if isinstance(value, str):
        if value.startswith("IPY_MODEL_"):
            yield value[len("IPY_MODEL_"):]
    elif isinstance(value, dict):
        for v in value.values():
            yield from _refs(v)
    elif isinstance(value, list):
        for v in value:
            yield from _refs(v)


def _closure(state: dict[str, Any], root: str) -> set[str] | None:
    """Every model ``root`` needs; None when one is missing from the saved state."""
    seen: set[str] = set()
    todo = [root]
    while todo:
        mid = todo.pop()
        if mid in seen:
            continue
        if mid not in state:
            return None
        seen.add(mid)
        todo.extend(_refs(state[mid].get("state", {})))
    return seen


def site_copy(nb: Any) -> tuple[Any, int, int]:
    """The page's copy of an executed notebook: the widget views the bundled manager can draw, the state they need.

    Returns the notebook (changed in place), the number of views kept and the number dropped.
    """
    state = nb.metadata.get("widgets", {}).get(STATE, {}).get("state", {})
    keep: set[str] = set()
    kept = dropped = 0
    for cell in nb.cells:
        outputs = []
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(VIEW)
            if view is None:
                outputs.append(out)
                continue
            need = _closure(state, view.get("model_id", ""))
            if need is not None and all(state[m].get("model_module") in CORE for m in need):
                keep |= need
                kept += 1
                outputs.append(out)
                continue
            dropped += 1  # the explorer: its saved view, a separate output, shows it
            del out["data"][VIEW]
            if set(out["data"]) - {"text/plain"}:
                outputs.append(out)
        if cell.cell_type == "code":
            cell.outputs = outputs
    if keep:
        nb.metadata["widgets"][STATE]["state"] = {m: state[m] for m in state if m in keep}
    else:
        nb.metadata.pop("widgets", None)
    return nb, kept, dropped


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
    ap.add_argument("--out", type=Path, default=EXECUTED, help=f"executed copies (default {EXECUTED.relative_to(ROOT)})")
    ap.add_argument("--site", type=Path, default=SITE, help=f"the pages' copies (default {SITE.relative_to(ROOT)})")
    ap.add_argument("--jobs", type=int, default=2, help="notebooks run at once (default 2)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per cell (default 900: a loaded 2-core machine)")
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
    args.site.mkdir(parents=True, exist_ok=True)
    for src in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb, kept, dropped = site_copy(nbformat.read(args.out / src.name, as_version=4))
        nbformat.write(nb, args.site / src.name)
        if kept or dropped:
            print(f"docs: {src.name}: {kept} widget view(s) drawn from their saved state, {dropped} shown by their saved view")
    return 0


if __name__ == "__main__":
    sys.exit(main())
