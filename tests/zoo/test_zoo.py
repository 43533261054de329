"""The model-zoo sweep: every torchvision builder and the timm families, checked four ways, and the widget (see tests/zoo/checks.py).

One module-scoped fixture, ``family``, builds each family once; each test names (indirectly) the
families it checks: the engine checks run on every torchvision builder and timm family, the
headless explorer on every timm family and on one builder of each torchvision architecture.
Test ids read ``<source>-<family>`` (``timm-levit``, ``torchvision-resnet18``), so ``-k levit``
picks one family.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest
import torch

from saliency_widget.engine import available_methods
from saliency_widget.engine.cam import default_cam_layer
from tests.zoo import timm_cases, torchvision_cases
from tests.zoo.checks import (
    autograd_gradient,
    coincidences,
    corr,
    finite_positive,
    pooled_features,
    reference_gradcam,
    widget_outcome,
)
from tests.zoo.harness import Family, built_family, expect, record

pytest.importorskip("pytorch_grad_cam")

# one pytest.param per (source, case), shared by the tests that check it: pytest groups them, one build each
# (the timm families only where timm is installed: the torchvision sweep does not need it)
TIMM = timm_cases.CASES if importlib.util.find_spec("timm") is not None else []
_PARAMS = {(src, c.name): c.param(src) for src, cases in (("torchvision", torchvision_cases.CASES + torchvision_cases.WIDGET_CASES), ("timm", TIMM)) for c in cases}
ENGINE = [_PARAMS["torchvision", c.name] for c in torchvision_cases.CASES] + [_PARAMS["timm", c.name] for c in TIMM]
WIDGET = [_PARAMS["torchvision", c.name] for c in torchvision_cases.WIDGET_CASES] + [_PARAMS["timm", c.name] for c in TIMM]


@pytest.fixture(scope="module")
def family(request: pytest.FixtureRequest) -> Iterator[Family]:
    source, case = request.param
    yield from built_family(case, source)


engine = pytest.mark.parametrize("family", ENGINE, indirect=True)


@engine
def test_gradient_equals_autograd(family: Family, request: pytest.FixtureRequest) -> None:
    expect(request, family.case, "gradient")
    record(family, "grad", "fail")
    ours = family.explainer.saliency(family.target, "gradient")
    ref = autograd_gradient(family.model, family.x, family.target)
    assert bool(ref.abs().max() > 0), "plain autograd gives an all-zero gradient: the check would prove nothing"
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-6 * float(ref.abs().max()))
    record(family, "grad", "ok")


@engine
def test_default_gradcam_matches_pytorch_grad_cam(family: Family, request: pytest.FixtureRequest) -> None:
    expect(request, family.case, "gradcam")
    record(family, "cam", "fail")
    ex = family.explainer
    key = default_cam_layer(ex)
    info = next(i for i in ex.layers if i.key == key)
    # random weights: a class's positive evidence may be nowhere on a 1 x 2 grid; one of the top 3 must show some
    top = [int(k) for k in ex.logits[0].argsort(descending=True)[:3]]
    maps = {k: ex.saliency(k, "gradcam")[0, 0] for k in top}
    target = next((k for k in top if finite_positive(maps[k])), None)
    assert target is not None, (
        f"the default Grad-CAM at {key} ({info.layout} {info.shape}) is degenerate for each of the top-3 classes {top}: "
        f"maxima {[float(m.max()) for m in maps.values()]}"
    )
    ours = maps[target]
    ref = reference_gradcam(family.model, info, family.x, target)
    assert ref.shape == ours.shape == family.x.shape[2:]
    c = corr(ours, ref)
    assert c >= 0.99, (
        f"Grad-CAM at {key} ({info.layout} {info.shape}) correlates {c:.4f} with pytorch-grad-cam's "
        f"(ours in [{float(ours.min()):.3g}, {float(ours.max()):.3g}], theirs in [{float(ref.min()):.3g}, {float(ref.max()):.3g}])"
    )
    record(family, "cam", "ok")


@engine
def test_default_gradcam_layer_is_what_the_classifier_pools(family: Family, request: pytest.FixtureRequest) -> None:
    expect(request, family.case, "default")
    record(family, "default", "fail")
    pooled = pooled_features(family.model, family.x)
    if pooled is None:
        record(family, "default", "n/a")
        pytest.skip("the model pools no grid (a class token, or a flattened fixed-size grid): no pooled grid to compare with")
    ex = family.explainer
    key = default_cam_layer(ex)
    info = next(i for i in ex.layers if i.key == key)
    if len(pooled) == 3:
        assert info.shape == pooled, (
            f"the default Grad-CAM layer {key} is {info.layout} {info.shape}; the classifier pools (C, h, w) = {pooled}"
        )
    else:
        c, t = pooled
        assert info.layout == "tokens" and info.shape[0] == c and info.shape[1] * info.shape[2] in (t, t - info.prefix_tokens), (
            f"the default Grad-CAM layer {key} is {info.layout} {info.shape}; the classifier pools {t} tokens of {c} channels"
        )
    record(family, "default", "ok")


@engine
def test_no_layer_is_spatial_by_coincidence(family: Family, request: pytest.FixtureRequest) -> None:
    expect(request, family.case, "twin")
    record(family, "twin", "fail")
    bad = coincidences(family.explainer.layers, family.case.size, family.twin_layers, family.case.twin, family.third_layers)
    assert not bad, f"{len(bad)} layers reported spatial by shape coincidence:\n" + "\n".join(bad[:20])
    record(family, "twin", "ok")


@pytest.mark.parametrize("method", available_methods())
@pytest.mark.parametrize("family", WIDGET, indirect=True)
def test_widget_renders_or_says_why(family: Family, method: str, request: pytest.FixtureRequest) -> None:
    expect(request, family.case, f"widget:{method}")
    problem = widget_outcome(family.explorer, method)
    if problem is not None:
        family.row.outcomes["widget"] = "fail"
    else:
        family.row.outcomes.setdefault("widget", "ok")
    assert problem is None, problem
