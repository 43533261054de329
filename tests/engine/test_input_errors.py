"""Bad input gets one clear error of our family, naming the value and the valid choices."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import saliency_widget as sw
from saliency_widget import InputError, LayerError, MethodError, ModelError, SaliencyError
from tests.helpers import seeded_randn
from tests.nets import FiveClassCNN, NoReLU, seeded

M = seeded(FiveClassCNN).eval()
X = seeded_randn(2, 3, 8, 8, seed=1)


@pytest.mark.parametrize(
    ("call", "exc", "pattern"),
    [
        (lambda: sw.saliency(M, X, method="shap"), MethodError, r"'shap'.*'gradient', 'deconvnet', 'guided_backprop'"),
        (lambda: sw.saliency(M, X, target=5), InputError, r"target 5 .*5 classes.*0\.\.4"),
        (lambda: sw.saliency(M, X, target=-1), InputError, r"target -1 .*0\.\.4"),
        (lambda: sw.saliency(M, X, target=[1, 2, 3]), InputError, r"3 entries.*N=2"),
        (lambda: sw.saliency(M, X, target=1.5), InputError, r"target"),
        (lambda: sw.saliency(M, X, target=True), InputError, r"bool"),
        (lambda: sw.saliency(M, X[0]), InputError, r"4 dimensions.*\(3, 8, 8\).*unsqueeze\(0\)"),
        (lambda: sw.saliency(M, X[None]), InputError, r"4 dimensions.*got 5"),
        (lambda: sw.saliency(M, (X * 255).to(torch.uint8)), InputError, r"floating-point.*torch.uint8"),
        (lambda: sw.saliency(M, X.numpy()), InputError, r"torch.Tensor.*ndarray"),
        (lambda: sw.saliency(M, X[:, :1]), InputError, r"1 channel.*expects 3"),
        (lambda: sw.saliency(M, X * float("nan")), InputError, r"NaN or Inf"),
        (lambda: sw.saliency(M, X[:0]), InputError, r"empty batch"),
        (lambda: sw.project(M, X, "features.9", 0), LayerError, r"'features.9'.*'features.0', 'features.1', 'features.2', 'fc'"),
        (lambda: sw.project(M, X, "features.1", 4), InputError, r"channel 4 .*0\.\.3"),
        (lambda: sw.project(M, X, "features.1", 0, position=(8, 0)), InputError, r"y=8.*8x8.*0\.\.7"),
        (lambda: sw.project(M, X, "features.1", 0, position=(0, -1)), InputError, r"x=-1"),
        (lambda: sw.project(M, X, "features.1", 0, position=(0.5, 1.0)), InputError, r"position"),
        (lambda: sw.project(M, X, "features.1", 0, call=1), LayerError, r"ran 1 time.*call must be one of \[0\], got 1"),
        (lambda: sw.project(M, X, "features.1", 0, method="occlusion"), MethodError, r"'occlusion'"),
        (lambda: sw.project(M, X, "fc", 0, position=(0, 0)), InputError, r"no spatial dimensions"),
        (lambda: sw.Explainer(M, X).activation("nope"), LayerError, r"'nope'.*'features.0'"),
        (lambda: sw.Explainer(M, X).activation("features.1", call=3), LayerError, r"ran 1 time.*\[0\]"),
        (lambda: sw.saliency(NoReLU().eval(), X, method="deconvnet"), ModelError, r"ran no ReLU.*Tanh.*method='gradient'"),
        (lambda: sw.saliency(torch.jit.script(M), X), ModelError, r"TorchScript"),
        (lambda: sw.saliency(lambda t: t, X), ModelError, r"nn.Module"),
        (lambda: sw.saliency(copy.deepcopy(M).half(), X), ModelError, r"float16 on the CPU.*model.float\(\)"),
        (lambda: sw.saliency(nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU()), X), ModelError, r"logits of shape \(N, K\)"),
    ],
    ids=[
        "unknown-method", "target-too-big", "target-negative", "target-wrong-length", "target-float", "target-bool",
        "rank-3", "rank-5", "int-input", "numpy-input", "wrong-channels", "nan-input", "empty-batch",
        "unknown-layer", "channel-out-of-range", "position-y-out-of-range", "position-x-negative", "position-float",
        "call-out-of-range", "projection-method", "position-on-fc", "activation-unknown-layer", "activation-bad-call",
        "no-relu-deconvnet", "torchscript", "not-a-module", "half-on-cpu", "not-logits",
    ],
)
def test_bad_input(call, exc: type[Exception], pattern: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(exc, match=pattern) as info:
        call()
    assert isinstance(info.value, SaliencyError)


def test_no_relu_model_still_has_gradients() -> None:
    out = sw.saliency(NoReLU().eval(), X, method="gradient")
    assert out.shape == X.shape and bool(out.abs().sum() > 0)


def test_mixed_dtype_input_is_cast_and_returned_in_input_dtype() -> None:
    m64 = FiveClassCNN().double().eval()
    out = sw.saliency(m64, X)
    assert out.dtype == torch.float32
    xr = X.double().requires_grad_(True)
    o = m64(xr)
    (want,) = torch.autograd.grad(o.gather(1, o.argmax(1, keepdim=True)).sum(), xr)
    torch.testing.assert_close(out, want.float())


def test_layer_error_is_a_keyerror_with_readable_message() -> None:
    with pytest.raises(KeyError) as info:
        sw.project(M, X, "nope", 0)
    assert str(info.value).startswith("unknown layer 'nope'")
