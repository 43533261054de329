"""Shared pieces of the CUDA tests: the skip reason, exact float32 on the GPU, the reference comparison.

The GPU tests are marked ``gpu`` and skip with a reason where CUDA is absent;
``bash benchmarks/gpu.sh`` runs them first when a GPU is lent. Each comparison's CPU half also
runs on the CPU in an unmarked twin test, so the reference and the tolerance are checked
in every CI run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import torch
from torch import nn

import saliency_widget as sw
from tests.helpers import seeded_randn
from tests.nets import sequential_cnn

HAS_CUDA = torch.cuda.is_available()
NO_CUDA = "needs CUDA: no GPU on this machine (bash benchmarks/gpu.sh runs these tests when one is lent)"
requires_cuda = pytest.mark.skipif(not HAS_CUDA, reason=NO_CUDA)
gpu = [pytest.mark.gpu, requires_cuda]

METHODS = sw.available_methods()
# The three ReLU-rule maps: one backward each, the widget's per-method hot path.
RULE_METHODS = ("gradient", "deconvnet", "guided_backprop")
# Options that keep the sampling and occlusion methods cheap on the 32 px test images.
OPTIONS: dict[str, dict[str, object]] = {
    "smoothgrad": {"n": 8, "batch_size": 4},
    "integrated_gradients": {"steps": 16},
    "occlusion": {"window": 8, "stride": 4, "output": "logit"},
}
TARGETS = [1, 3]  # explicit: float32 and float64 might disagree on a near-tie argmax

# Tolerances against the CPU float64 reference, relative to the reference map's largest
# magnitude (a map's scale is arbitrary) plus a relative part per element:
#   float64 anywhere: only summation order differs;
#   float32 with TF32 off: float32 rounding through a few layers.
TOL = {torch.float64: (1e-9, 1e-7), torch.float32: (2e-5, 2e-4)}  # (atol x max|ref|, rtol)


def model_and_inputs(device: str | torch.device, dtype: torch.dtype) -> tuple[nn.Module, torch.Tensor]:
    """The three-block test CNN (4 classes) and a ``(2, 3, 32, 32)`` batch, on ``device`` in ``dtype``."""
    model = sequential_cnn(seed=2).to(device=device, dtype=dtype)
    x = seeded_randn(2, 3, 32, 32, seed=5, dtype=torch.float64).to(device=device, dtype=dtype)
    return model, x


def reference_map(method: str) -> torch.Tensor:
    """``method``'s map on the CPU in float64: the reference every device is compared with."""
    model, x = model_and_inputs("cpu", torch.float64)
    return sw.saliency(model, x, TARGETS, method=method, **OPTIONS.get(method, {}))


def assert_matches_reference(got: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype) -> None:
    """``got`` (any device) equals ``ref`` (CPU float64) within :data:`TOL` for ``dtype``."""
    atol, rtol = TOL[dtype]
    assert got.shape == ref.shape
    scale = float(ref.abs().max())
    assert scale > 0, "the reference map is all zeros: the comparison would prove nothing"
    torch.testing.assert_close(got.detach().cpu().double(), ref, atol=atol * scale, rtol=rtol)


@contextlib.contextmanager
def exact_float32() -> Iterator[None]:
    """TF32 off for convolutions and matmuls (on by default for cuDNN: 10-bit mantissas), restored after."""
    old = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old
