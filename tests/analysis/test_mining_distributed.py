"""Mining as the user runs it: torchrun with 2 CPU processes (gloo) equals 1 process; a SIGKILLed run resumes exactly.

512 generated 32 px scenes (resized to the bundled model's 128 px), the first layer (16
channels), k = 9. Each case starts fresh Python processes, so they are marked slow.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from saliency_widget.analysis import load_index
from saliency_widget.analysis.mining import KILL_ENV

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--data", "sample:shapes", "--scene-size", "32", "--limit", "512", "--layers", "features.relu1",
        "--k", "9", "--batch-size", "32", "--quiet"]


def _run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(cmd, cwd=ROOT, env=full, capture_output=True, text=True, timeout=600)


def _mine(out: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, "-m", "saliency_widget.mine", *ARGS, "--out", str(out), *extra], env)


def _files(root: Path) -> dict[str, bytes]:
    """Every file of an index by relative path; the manifest without its timing (seconds differ run to run)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            raw = p.read_bytes()
            if p.name == "manifest.json":
                man = json.loads(raw)
                assert set(man.pop("timing")) == {"scan_s", "project_s", "world"}
                raw = json.dumps(man, sort_keys=True).encode()
            out[p.relative_to(root).as_posix()] = raw
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("one") / "index"
    proc = _mine(out)
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout and "on 1 process(es)" in proc.stdout
    return out


def test_torchrun_two_processes_equal_one(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "index"
    proc = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                 "-m", "saliency_widget.mine", *ARGS, "--out", str(out)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "on 2 process(es)" in proc.stdout
    two, one = _files(out), _files(reference)
    assert sorted(two) == sorted(one)
    assert len([f for f in one if f.endswith(".png")]) == 2 * 16 * 9
    assert [f for f in one if two[f] != one[f]] == []
    assert json.loads((out / "manifest.json").read_text())["timing"]["world"] == 2
    assert load_index(out).top("features.relu1", 7) == load_index(reference).top("features.relu1", 7)


def test_sigkill_mid_scan_then_rerun_resumes_identically(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "index"
    killed = _mine(out, "--checkpoint-every", "2", env={KILL_ENV: "3"})  # dies right after its 3rd checkpoint: 6 of 16 batches
    assert killed.returncode == -signal.SIGKILL
    assert (out / ".mining" / "rank0of1.pt").is_file() and not (out / "manifest.json").exists()
    resumed = _mine(out, "--checkpoint-every", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert "rank 0 resumes at global batch 6 (192 images done)" in resumed.stderr
    assert _files(out) == _files(reference)
