"""Every example notebook runs top to bottom offline (executed with nbclient, as CI does).

The notebooks are executed by ``scripts/docs_notebooks.py`` into ``docs/_generated/notebooks``, the
copies the docs site renders: whichever of this test and the docs build (tests/docs) runs first
executes a notebook, the other checks that fresh copy (newer than the notebook and the package).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import nbformat
import pytest

from tests.helpers import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "example_notebooks").glob("*.ipynb"))


def _executor() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_notebooks", REPO_ROOT / "scripts" / "docs_notebooks.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_all_six_notebooks_exist() -> None:
    assert [p.name[:3] for p in NOTEBOOKS] == ["01_", "02_", "03_", "04_", "05_", "06_"]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks without outputs"
    run = _executor()
    dst = run.EXECUTED / path.name
    if not run.fresh(path, dst):
        _, _, err = run.execute(path, dst, 300)
        assert not err, f"{path.name}: {err}"
    done = nbformat.read(dst, as_version=4)
    code = [c for c in done.cells if c.cell_type == "code"]
    assert [c.source for c in code] == [c.source for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code if c.source.strip()), "every code cell ran"
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
