"""The atlas as the user builds it: the CLI on the bundled model over 256 generated scenes, two layers.

The site is built once per test session (a fresh Python process, ~30 s on 2 cores) and shared
by the manifest, browser and torchrun tests. The feature visualizations are kept tiny (4 steps,
48 px): the tests check the site, not how good the pictures are.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("features.relu1", "features.relu2")
CHANNELS = {"features.relu1": 16, "features.relu2": 32}
SCENES = 256
ARGS = ["atlas", "--data", "sample:shapes", "--limit", str(SCENES), "--layers", ",".join(LAYERS), "--steps", "4", "--size", "48",
        "--batch-size", "32", "--quiet"]


def run_cli(args: list[str], *, torchrun: int = 0) -> subprocess.CompletedProcess[str]:
    """``python -m saliency_widget.cli ARGS`` (under ``torch.distributed.run`` with ``torchrun`` processes) in a fresh process."""
    launch = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={torchrun}"] if torchrun else []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *launch, "-m", "saliency_widget.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The atlas site built by one process."""
    out = tmp_path_factory.mktemp("atlas-one") / "site"
    proc = run_cli([*ARGS, "--out", str(out)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "wrote" in proc.stdout and "48 filter page(s)" in proc.stdout and "on 1 process(es)" in proc.stdout, proc.stdout
    return out
