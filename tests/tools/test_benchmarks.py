"""The benchmark entry point runs end to end on a tiny model (timings are not checked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO_ROOT


def test_benchmark_entry_point_tiny(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "benchmarks", "--models", "tiny", "--batches", "1,2", "--repeats", "1", "--warmup", "0", "--out", str(tmp_path)]
    res = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert res.returncode == 0, res.stderr[-2000:]
    (js,) = tmp_path.glob("cpu-*.json")
    data = json.loads(js.read_text())
    rows = data["rows"]
    cases = {r["case"] for r in rows}
    for must in ["floor: forward + backward (autograd)", "gradient", "deconvnet", "guided_backprop", "all three maps, ours",
                 "method switch on cached forward", "projection (middle layer)", "occlusion 16x16 stride 8, ours",
                 "no_grad inference (4 images)", "no_grad inference (8 images)", "top-k scan", "top-k scan + projections"]:
        assert must in cases
    assert {r["batch"] for r in rows} == {1, 2}
    # every case but the floor has a ratio to a baseline measured in the same run
    for r in rows:
        if r["median_ms"] is not None and r["baseline"]:
            assert r["ratio"] is not None and r["ratio"] > 0
    (md,) = tmp_path.glob("cpu-*.md")
    table = [ln for ln in md.read_text().splitlines() if ln.startswith("| ")]
    assert table[0].startswith("| model | batch | case |")
    assert all(ln.count("|") == table[0].count("|") for ln in table)
    assert len(table) == 1 + len(rows)  # header + one line per row (the |---| line is not "| ")


def test_benchmark_faithfulness_case(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "benchmarks", "--models", "", "--faithfulness", "--faithfulness-images", "1",
           "--faithfulness-chunks", "2", "--repeats", "1", "--out", str(tmp_path)]
    res = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert res.returncode == 0, res.stderr[-2000:]
    (js,) = tmp_path.glob("cpu-*.json")
    rows = {r["case"]: r for r in json.loads(js.read_text())["rows"]}
    assert rows["faithfulness curves, ours (full result)"]["ratio"] > 0
    assert rows["widget faithfulness: time to first curve"]["median_ms"] > 0
    quantus = rows["faithfulness curves, Quantus PixelFlipping"]
    # a ratio when Quantus is installed, else a note saying why not
    assert quantus["ratio"] is not None or "quantus unavailable" in quantus["note"]
