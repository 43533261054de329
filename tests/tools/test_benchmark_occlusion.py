"""The occlusion benchmark runs end to end on the tiny model (timings are not checked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO_ROOT


def test_occlusion_benchmark_tiny(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "benchmarks.occlusion", "--models", "tiny", "--stride", "16", "--repeats", "1",
           "--no-widget", "--out", str(tmp_path)]
    res = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert res.returncode == 0, res.stderr[-2000:]
    (js,) = tmp_path.glob("cpu-*-occlusion-incremental.json")
    rows = {r["case"]: r for r in json.loads(js.read_text())["rows"]}
    assert rows["occlusion 16x16 stride 16, ours"]["baseline"] == ""
    for case in ["occlusion, ours full recompute (incremental=False)", "occlusion, Captum default (1 per eval)",
                 "occlusion, Captum perturbations_per_eval=64"]:
        assert rows[case]["baseline"] == "incremental" and rows[case]["ratio"] > 0
        assert "by CPU time" in rows[case]["note"]
