"""Every bad input to the engine gets ONE error of our family (SaliencyError) whose one-line message names
the bad value and says what to do; afterwards the model is exactly as it was and still explainable."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import saliency_widget as sw
from saliency_widget import (
    InputError,
    LayerError,
    MethodError,
    ModelError,
    SaliencyError,
)
from tests.helpers import assert_unchanged, seeded_randn, snapshot
from tests.nets import NoReLU, Returns1D, Returns4D, ReturnsTuple, small_cnn

M = small_cnn()
X = seeded_randn(2, 3, 8, 8, seed=1)


def _meta_model() -> nn.Module:
    return copy.deepcopy(M).to("meta")


ENGINE_BAD: list[tuple[str, Callable[[nn.Module], Any], type[SaliencyError], str]] = [
    # inputs: values
    ("inf-input", lambda m: sw.saliency(m, X * float("inf")), InputError, r"NaN or Inf.*normalisation"),
    ("single-nan-pixel", lambda m: sw.saliency(m, X.clone().index_put_((torch.tensor([0]),), torch.tensor(float("nan")))), InputError, r"NaN or Inf"),
    ("explainer-neg-inf", lambda m: sw.Explainer(m, X - float("inf")), InputError, r"NaN or Inf"),
    ("layers-nan", lambda m: sw.layers(m, X * float("nan")), InputError, r"NaN or Inf"),
    # inputs: shape / dtype / type
    ("rank-2", lambda m: sw.saliency(m, X[0, 0]), InputError, r"4 dimensions.*\(8, 8\)"),
    ("explainer-rank-3", lambda m: sw.Explainer(m, X[0]), InputError, r"4 dimensions.*unsqueeze\(0\)"),
    ("project-rank-5", lambda m: sw.project(m, X[None], "features.1", 0), InputError, r"4 dimensions.*got 5"),
    ("one-channel-explainer", lambda m: sw.Explainer(m, X[:, :1]), InputError, r"1 channel.*expects 3.*convert"),
    ("four-channels-project", lambda m: sw.project(m, torch.cat([X, X[:, :1]], 1), "features.1", 0), InputError, r"4 channel.*expects 3"),
    ("int64-input", lambda m: sw.saliency(m, X.long()), InputError, r"floating-point.*torch.int64.*\.float\(\)"),
    ("bool-input", lambda m: sw.saliency(m, X > 0), InputError, r"torch.bool"),
    ("complex-input", lambda m: sw.saliency(m, X.to(torch.complex64)), InputError, r"complex64"),
    ("list-input", lambda m: sw.saliency(m, X.tolist()), InputError, r"torch.Tensor.*got list.*as_tensor"),
    ("meta-input", lambda m: sw.saliency(m, X.to("meta")), InputError, r"'meta' device"),
    # models
    ("meta-model", lambda m: sw.saliency(_meta_model(), X), ModelError, r"'meta' device.*to_empty"),
    ("meta-model-explainer", lambda m: sw.Explainer(_meta_model(), X), ModelError, r"'meta' device"),
    ("device-mismatch", lambda m: sw.Explainer(m, X, device="meta"), InputError, r"device meta.*parameters are on cpu"),
    ("half-model-explainer", lambda m: sw.Explainer(copy.deepcopy(m).half(), X), ModelError, r"float16 on the CPU.*model.float\(\)"),
    ("bfloat16-model", lambda m: sw.saliency(copy.deepcopy(m).bfloat16(), X), ModelError, r"bfloat16 on the CPU"),
    ("torchscript-traced", lambda m: sw.saliency(torch.jit.trace(m, X), X), ModelError, r"TorchScript.*original Python nn.Module"),
    ("torchscript-project", lambda m: sw.project(torch.jit.script(m), X, "features.1", 0), ModelError, r"TorchScript"),
    ("returns-tuple", lambda m: sw.saliency(ReturnsTuple().eval(), X), ModelError, r"logits of shape \(N, K\).*tuple"),
    ("returns-4d", lambda m: sw.saliency(Returns4D().eval(), X), ModelError, r"shape \(2, 6, 4, 4\).*class scores"),
    ("returns-1d", lambda m: sw.Explainer(Returns1D().eval(), X), ModelError, r"shape \(2,\)"),
    ("no-relu-guided", lambda m: sw.saliency(NoReLU(functional=True).eval(), X, method="guided_backprop"), ModelError, r"ran no ReLU.*Tanh.*method='gradient'"),
    ("not-a-module", lambda m: sw.Explainer(m.state_dict(), X), ModelError, r"nn.Module, got OrderedDict"),
    # targets / layers / channels / positions / methods
    ("target-too-big-explainer", lambda m: sw.Explainer(m, X).saliency(target=3), InputError, r"target 3 .*3 classes.*0\.\.2"),
    ("target-string", lambda m: sw.saliency(m, X, target="cat"), InputError, r"target must be None, an int.*got str"),
    ("target-float-tensor", lambda m: sw.saliency(m, X, target=torch.tensor([0.5, 1.0])), InputError, r"integer class indices.*float32"),
    ("target-2d", lambda m: sw.saliency(m, X, target=torch.zeros(2, 1, dtype=torch.long)), InputError, r"1-D.*\(2, 1\)"),
    ("layer-int", lambda m: sw.project(m, X, 1, 0), LayerError, r"unknown layer 1.*'features.0'"),
    ("layer-typo-explainer", lambda m: sw.Explainer(m, X).project("features.l", 0), LayerError, r"'features.l'.*'features.1'"),
    ("channel-negative", lambda m: sw.project(m, X, "features.4", -1), InputError, r"channel -1 .*0\.\.5"),
    ("channel-too-big-explainer", lambda m: sw.Explainer(m, X).project("features.4", 6), InputError, r"channel 6 .*0\.\.5"),
    ("position-y-too-big", lambda m: sw.Explainer(m, X).project("features.4", 0, position=(4, 0)), InputError, r"y=4.*4x4.*0\.\.3"),
    ("call-too-big", lambda m: sw.project(m, X, "features.4", 0, call=2), LayerError, r"ran 1 time.*\[0\]"),
    ("method-wrong-case", lambda m: sw.saliency(m, X, method="Gradient"), MethodError, r"'Gradient'.*'gradient'"),
    ("method-explainer", lambda m: sw.Explainer(m, X).saliency(method="shap"), MethodError, r"'shap'.*'deconvnet'"),
    ("method-none", lambda m: sw.saliency(m, X, method=None), MethodError, r"None"),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), [c[1:] for c in ENGINE_BAD], ids=[c[0] for c in ENGINE_BAD])
def test_engine_bad_input(call: Callable[[nn.Module], Any], exc: type[SaliencyError], pattern: str) -> None:
    model = small_cnn()
    before = snapshot(model)
    with pytest.raises(SaliencyError, match=pattern) as info:
        call(model)
    assert type(info.value) is exc, f"expected {exc.__name__}, got {type(info.value).__name__}: {info.value}"
    assert "\n" not in str(info.value)  # one clear line, no dumped traceback or repr soup
    assert_unchanged(model, before)
    # the model is still explainable, with the same result as an untouched copy
    torch.testing.assert_close(sw.saliency(model, X), sw.saliency(small_cnn(), X))
