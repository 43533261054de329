"""``torchrun --nproc_per_node=2 -m saliency_widget.cli atlas`` on CPU (gloo) builds the same site as one process.

Every file is compared byte for byte, except the timing: ``atlas.json``'s and the index
manifest's ``timing`` and the index page's timing line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .conftest import ARGS, run_cli

pytestmark = pytest.mark.slow

TIMING_LINE = re.compile(rb"<p class='timing'>Built [^<]*</p>")


def _files(root: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        raw = p.read_bytes()
        rel = p.relative_to(root).as_posix()
        if rel in ("atlas.json", "index/manifest.json"):
            doc = json.loads(raw)
            assert "world" in doc.pop("timing")
            raw = json.dumps(doc, sort_keys=True).encode()
        elif rel == "index.html":
            raw, n = TIMING_LINE.subn(b"", raw)
            assert n == 1
        out[rel] = raw
    return out


def test_torchrun_two_processes_build_the_same_site(site: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    proc = run_cli([*ARGS, "--out", str(out)], torchrun=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "on 2 process(es)" in proc.stdout and proc.stdout.count("wrote") == 1  # rank 0 reports
    two, one = _files(out), _files(site)
    assert sorted(two) == sorted(one)
    assert [f for f in one if two[f] != one[f]] == []
    assert json.loads((out / "atlas.json").read_text())["timing"]["world"] == 2
