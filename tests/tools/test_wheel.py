"""The wheel ships the anywidget ES module, and the installed package finds it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT


@pytest.mark.slow
def test_wheel_ships_the_esm(tmp_path: Path) -> None:
    # Build from a copy so the checkout gets no build/ litter.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO_ROOT / name).exists():
            shutil.copy(REPO_ROOT / name, src / name)
    if not (src / "README.md").exists():  # pyproject names a readme; not this test's concern
        (src / "README.md").write_text("placeholder\n")
    shutil.copytree(REPO_ROOT / "js", src / "js")
    shutil.copytree(REPO_ROOT / "saliency_widget", src / "saliency_widget", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-w", str(dist), "-q"],
        check=True, env={**os.environ, "PIP_NO_INDEX": "1"},
    )
    (wheel,) = dist.glob("saliency_widget-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        esm = [n for n in names if n.startswith("saliency_widget/static/") and n.endswith(".js")]
        assert "saliency_widget/static/feature_map.js" in esm
        assert len(zf.read("saliency_widget/static/feature_map.js").strip()) > 100
        zf.extractall(tmp_path / "site")
    # Import the unpacked wheel (not the checkout) and let importlib.resources find it.
    code = (
        "import json, saliency_widget.widget.canvas as c; p = c.esm_path();"
        "print(json.dumps([str(p), c.__file__, len(p.read_text())]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
    )
    path, module_file, size = json.loads(out.stdout.strip().splitlines()[-1])
    assert module_file.startswith(str(tmp_path / "site"))
    assert Path(path) == tmp_path / "site" / "saliency_widget" / "static" / "feature_map.js"
    assert size > 100
