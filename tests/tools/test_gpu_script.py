"""``bash benchmarks/gpu.sh --dry-run``: the plan names every GPU row, and every script and flag it runs exists.

The script itself only runs where CUDA is (a lent GPU); its plan is checked here on every CI
run, so that the first session with a device can run it in one go.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu.sh"

# Every row of issue 33's list, as the plan names it.
ROWS = [
    "CUDA tests",
    "single maps vs floor and Captum",
    "the three maps on one Explainer",
    "method switch on a cached forward",
    "projection (middle layer)",
    "occlusion incremental vs full recompute vs Captum",
    "faithfulness curves vs Quantus",
    "feature visualization vs Lucent",
    "mining scan vs inference",
    "widget click-to-PNG on ResNet-50",
    "occlusion plan rebuilt vs cached",
]


@cache
def plan() -> str:
    proc = subprocess.run(["bash", str(SCRIPT), "--dry-run"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def steps() -> dict[str, list[str]]:
    """Step name -> its command's arguments after ``python``."""
    out = {}
    for line in plan().splitlines():
        m = re.match(r"step (\w+) \(timeout (\d+)s\)(?: \[SKIP[^]]*\])?: (\S+) (.*)$", line)
        if m:
            out[m.group(1)] = shlex.split(m.group(4))
    return out


def test_dry_run_exits_0_and_names_every_row() -> None:
    text = plan()
    missing = [r for r in ROWS if r not in text]
    assert missing == [], text
    assert set(steps()) == {"tests", "maps", "occlusion", "faithfulness", "mining", "costs", "click", "featviz"}
    assert "writes: benchmarks/results/cuda-" in text


def test_the_timeouts_fit_in_8_minutes() -> None:
    total = sum(int(t) for t in re.findall(r"^step \w+ \(timeout (\d+)s\)", plan(), flags=re.M))
    assert 0 < total <= 8 * 60
    assert "budget 480s" in plan()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_without_cuda_a_real_run_refuses_with_a_reason() -> None:
    proc = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable})
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr and "--dry-run" in proc.stderr


def test_the_featviz_hook_skips_until_its_benchmark_exists() -> None:
    line = next(ln for ln in plan().splitlines() if ln.startswith("step featviz"))
    exists = (ROOT / "benchmarks" / "featviz.py").exists() or (ROOT / "benchmarks" / "feature_visualization.py").exists()
    assert ("[SKIP" in line) is not exists


BENCH_STEPS = ["maps", "occlusion", "faithfulness", "mining", "costs", "click"]
if (ROOT / "benchmarks" / "featviz.py").exists():
    BENCH_STEPS.append("featviz")


@pytest.mark.parametrize("step", BENCH_STEPS)
def test_every_benchmark_module_and_flag_exists(step: str) -> None:
    args = steps()[step]
    assert args[0] == "-m"
    module = args[1]
    assert (ROOT / Path(*module.split("."))).with_suffix(".py").exists() or (ROOT / module / "__main__.py").exists()
    proc = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    flags = [a for a in args[2:] if a.startswith("--")]
    assert "--device" in flags and "--tag" in flags  # on cuda, and a result file of its own
    unknown = [f for f in flags if not re.search(rf"(^|\s){re.escape(f)}[\s,=]", proc.stdout, flags=re.M)]
    assert unknown == [], proc.stdout
    i = args.index("--device")
    assert args[i + 1] == "cuda"


def test_the_tests_step_selects_the_registered_gpu_marker() -> None:
    args = steps()["tests"]
    assert args[:2] == ["-m", "pytest"] and "gpu" == args[args.index("-m", 1) + 1] and "tests/gpu" in args
    assert '"gpu: ' in (ROOT / "pyproject.toml").read_text()
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", "gpu",
                           "tests/gpu"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:]
    collected = [ln for ln in proc.stdout.splitlines() if ln.startswith("tests/gpu/")]
    assert len(collected) >= 10, proc.stdout
