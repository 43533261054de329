"""Incremental occlusion is exact on CUDA; mining runs under torchrun with nccl (1 process, and 2 with 2 GPUs).

Occlusion: every occluded score of the incremental path equals the full recompute on the same
device (float64: to summation order; float32 with TF32 off: float32 rounding), as
``tests/engine/test_incremental.py`` checks on the CPU, and the CUDA scores equal the CPU's.
Mining: ``torchrun -m saliency_widget.mine`` picks ``cuda:LOCAL_RANK`` and the nccl backend
when CUDA is available; the index must equal a single CPU process's, as the gloo test
(``tests/analysis/test_mining_distributed.py``) checks on the CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import saliency_widget as sw
from saliency_widget.analysis import load_index
from saliency_widget.engine.incremental import IncrementalPlan, build_plan
from saliency_widget.engine.occlusion import occlusion_scores
from saliency_widget.models import shapes_cnn
from tests.gpu.common import exact_float32, gpu
from tests.helpers import seeded_randn
from tests.nets import resnet18_random_bn

ROOT = Path(__file__).resolve().parents[2]
OPTS: dict[str, object] = {"window": 16, "stride": 8, "output": "logit"}
MODELS = {"bundled": (shapes_cnn, 64), "resnet18": (lambda: resnet18_random_bn(seed=6).float(), 48)}
TOL = {torch.float64: {"atol": 1e-9, "rtol": 1e-9}, torch.float32: {"atol": 1e-4, "rtol": 1e-4}}


def _scores(name: str, device: str, dtype: torch.dtype, incremental: bool) -> torch.Tensor:
    make, size = MODELS[name]
    model = make().eval().to(device=device, dtype=dtype)
    x = seeded_randn(1, 3, size, size, seed=7, dtype=torch.float64).to(device=device, dtype=dtype)
    if incremental:
        with torch.no_grad():
            plan = build_plan(model, x)
        assert isinstance(plan, IncrementalPlan), plan  # a silent fallback would compare the full path with itself
    ex = sw.Explainer(model, x, record_layers=False)
    with exact_float32():
        _, grid, _, _ = occlusion_scores(ex, torch.tensor([1], device=device), incremental=incremental, **OPTS)  # type: ignore[arg-type]
    return grid


@pytest.mark.parametrize("name", list(MODELS))
def test_cpu_incremental_occlusion_float32_within_the_stated_tolerance(name: str) -> None:
    """The CPU half: the float32 tolerance of the CUDA test holds against the CPU float64 scores."""
    got = _scores(name, "cpu", torch.float32, incremental=True)
    ref = _scores(name, "cpu", torch.float64, incremental=False)
    torch.testing.assert_close(got.double(), ref, **TOL[torch.float32])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.gpu
@gpu[1]
def test_incremental_occlusion_is_exact_on_cuda(name: str, dtype: torch.dtype) -> None:
    inc = _scores(name, "cuda", dtype, incremental=True)
    full = _scores(name, "cuda", dtype, incremental=False)
    assert inc.device.type == "cuda"
    torch.testing.assert_close(inc, full, **TOL[dtype])
    # and the CUDA scores are the CPU float64 ones
    torch.testing.assert_close(inc.cpu().double(), _scores(name, "cpu", torch.float64, incremental=False), **TOL[dtype])


ARGS = ["--data", "sample:shapes", "--scene-size", "32", "--limit", "256", "--layers", "features.relu1",
        "--k", "9", "--batch-size", "32", "--quiet"]


def _mine(cmd: list[str], out: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([*cmd, *ARGS, "--out", str(out)], cwd=ROOT, env=full, capture_output=True, text=True, timeout=300)


def _torchrun(procs: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", "-m", "saliency_widget.mine"]


@pytest.fixture(scope="module")
def cpu_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cpu") / "index"
    proc = _mine([sys.executable, "-m", "saliency_widget.mine", "--device", "cpu"], out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _same_index(got: Path, ref: Path) -> None:
    """Same winners and values as the CPU index, up to float32 (cuDNN's convolution vs the CPU's; TF32 off).

    A winner's identity is compared where its value is clear of the others' by more than the
    tolerance (near-ties may order differently across devices); the last winner is left out
    (it may tie with the first loser, which the index does not keep).
    """
    a, b = load_index(got), load_index(ref)
    for ch in (0, 5, 15):
        ta, tb = a.top("features.relu1", ch), b.top("features.relu1", ch)
        assert len(ta) == len(tb) == 9
        torch.testing.assert_close(torch.tensor([w.value for w in ta]), torch.tensor([w.value for w in tb]),
                                   atol=1e-3, rtol=1e-3)
        for i, w in enumerate(tb[:-1]):
            if all(abs(w.value - o.value) > 1e-2 for j, o in enumerate(tb) if j != i):
                assert (ta[i].image, ta[i].y, ta[i].x) == (w.image, w.y, w.x), (ch, i)


@pytest.mark.parametrize("procs", [1, 2])
@pytest.mark.gpu
@gpu[1]
def test_mining_under_torchrun_with_nccl_equals_one_cpu_process(procs: int, cpu_index: Path, tmp_path: Path) -> None:
    if torch.cuda.device_count() < procs:
        pytest.skip(f"needs {procs} GPUs for {procs} nccl processes (one GPU each), found {torch.cuda.device_count()}")
    out = tmp_path / "index"
    # NVIDIA_TF32_OVERRIDE=0: cuDNN and cuBLAS in full float32 in the mining processes (TF32 is
    # torch's default for cuDNN convolutions: 10-bit mantissas, errors near 1e-3)
    proc = _mine(_torchrun(procs), out, env={"OMP_NUM_THREADS": "1", "NVIDIA_TF32_OVERRIDE": "0"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"on {procs} process(es)" in proc.stdout
    assert json.loads((out / "manifest.json").read_text())["timing"]["world"] == procs
    _same_index(out, cpu_index)
