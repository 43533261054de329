"""Every method on CUDA equals the CPU float64 reference; maps stay float32 under autocast and bf16 models.

Tolerances (:data:`tests.gpu.common.TOL`), relative to the reference map's largest magnitude:
float64 on CUDA within 1e-9 (only the summation order differs), float32 on CUDA with TF32
off within 2e-5 plus 2e-4 per element. The float32 tolerance is checked on the CPU too
(``test_cpu_float32_matches_the_float64_reference``), so a CUDA failure is the GPU's, not the
tolerance's.
"""

from __future__ import annotations

import pytest
import torch

import saliency_widget as sw
from tests.gpu.common import (
    METHODS,
    OPTIONS,
    TARGETS,
    assert_matches_reference,
    exact_float32,
    gpu,
    model_and_inputs,
    reference_map,
)


@pytest.mark.parametrize("method", METHODS)
def test_cpu_float32_matches_the_float64_reference(method: str) -> None:
    """The CPU half of the CUDA comparison: the reference and the float32 tolerance hold on the CPU."""
    model, x = model_and_inputs("cpu", torch.float32)
    got = sw.saliency(model, x, TARGETS, method=method, **OPTIONS.get(method, {}))
    assert got.dtype == torch.float32
    assert_matches_reference(got, reference_map(method), torch.float32)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.gpu
@gpu[1]
def test_every_method_on_cuda_equals_the_cpu_float64_reference(method: str, dtype: torch.dtype) -> None:
    model, x = model_and_inputs("cuda", dtype)
    with exact_float32():
        got = sw.saliency(model, x, TARGETS, method=method, **OPTIONS.get(method, {}))
    assert got.device.type == "cuda" and got.dtype == dtype  # on the inputs' device and dtype
    assert_matches_reference(got, reference_map(method), dtype)


@pytest.mark.parametrize("method", ["gradient", "guided_backprop", "gradcam"])
@pytest.mark.parametrize("amp", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.gpu
@gpu[1]
def test_maps_are_float32_under_autocast(amp: torch.dtype, method: str) -> None:
    model, x = model_and_inputs("cuda", torch.float32)
    with exact_float32():
        plain = sw.saliency(model, x, TARGETS, method=method)
    with torch.autocast("cuda", dtype=amp):
        got = sw.saliency(model, x, TARGETS, method=method)
    assert got.dtype == torch.float32 and got.device.type == "cuda"
    assert bool(torch.isfinite(got).all()) and bool(got.any())
    # half-precision forward: same map up to fp16/bf16 rounding (bf16: 8-bit mantissa)
    cos = torch.nn.functional.cosine_similarity(got.flatten(1).double(), plain.flatten(1).double(), dim=1)
    assert bool((cos > 0.98).all()), cos


@pytest.mark.parametrize("method", ["gradient", "deconvnet", "guided_backprop", "gradcam", "occlusion"])
@pytest.mark.gpu
@gpu[1]
def test_maps_of_a_bf16_model_are_float32(method: str) -> None:
    """A bf16 model on the GPU explains float32 inputs: the map comes back float32 (the inputs' dtype)."""
    model, x = model_and_inputs("cuda", torch.float32)
    with exact_float32():
        plain = sw.saliency(model, x, TARGETS, method=method, **OPTIONS.get(method, {}))
    got = sw.saliency(model.to(torch.bfloat16), x, TARGETS, method=method, **OPTIONS.get(method, {}))
    assert got.dtype == torch.float32 and got.device.type == "cuda"
    assert bool(torch.isfinite(got).all()) and bool(got.any())
    if method == "occlusion":
        # its score drops (~0.003 here) are near bf16's resolution of the logits (~0.001 at
        # 0.23): only the dtype and finiteness are checked, not the shape of the map
        return
    cos = torch.nn.functional.cosine_similarity(got.flatten(1).double(), plain.flatten(1).double(), dim=1)
    assert bool((cos > 0.95).all()), cos
