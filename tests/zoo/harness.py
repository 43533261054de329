"""What the zoo test modules share: one built family per module-scoped fixture, and the check bodies.

A test module parametrizes a module-scoped fixture over its :class:`~tests.zoo.checks.Case` s and
calls :func:`built_family` in it; pytest groups the tests by that fixture, so each family is built
once, checked four ways, and released before the next one is built.
"""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

import saliency_widget as sw
from saliency_widget.engine.cam import default_cam_layer
from tests.zoo.checks import (
    Case,
    Row,
    autograd_gradient,
    coincidences,
    corr,
    finite_positive,
    image,
    pooled_features,
    reference_gradcam,
    seeded_build,
    table_row,
    widget_outcome,
)


class Family:
    """A built family: the model at the check size, its Explainer, and (lazily) the twin's layers."""

    def __init__(self, case: Case, source: str) -> None:
        self.case = case
        self.source = source
        t0 = time.perf_counter()
        self.model: nn.Module = seeded_build(lambda: case.build(case.size))
        self.x = image(case.size)
        self.explainer = sw.Explainer(self.model, self.x)
        self.target = int(self.explainer.logits.argmax(1))
        self.seconds = time.perf_counter() - t0
        self.row: Row = table_row(case, source, self.explainer)

    @functools.cached_property
    def twin_layers(self) -> list[sw.LayerInfo]:
        case = self.case
        # a model fixed to one input size at construction is built again for the twin size (same seed)
        twin = seeded_build(lambda: case.build(case.twin)) if case.fixed_size else self.model
        return sw.layers(twin, image(case.twin, seed=6))

    @functools.cached_property
    def explorer(self) -> Any:
        from saliency_widget.widget import explore

        w = explore(self.model, image(self.case.size, seed=7)[0])
        assert w.wait(600)
        return w

    def close(self) -> None:
        if "explorer" in self.__dict__:
            self.explorer.close()


def built_family(case: Case, source: str) -> Iterator[Family]:
    """The fixture body: build ``case``, yield it, release it (and its explorer) afterwards."""
    fam = Family(case, source)
    try:
        yield fam
    finally:
        fam.close()
        del fam
        gc.collect()


def expect(request: pytest.FixtureRequest, case: Case, check: str) -> None:
    """Mark the running test a strict xfail when ``case`` lists ``check`` as a known failure."""
    reason = case.xfail.get(check)
    if reason is not None:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


def _record(fam: Family, check: str, ok: str) -> None:
    fam.row.outcomes[check] = ok


# ---------------------------------------------------------------------------- check bodies
def check_gradient(fam: Family, request: pytest.FixtureRequest) -> None:
    expect(request, fam.case, "gradient")
    _record(fam, "grad", "fail")
    ours = fam.explainer.saliency(fam.target, "gradient")
    ref = autograd_gradient(fam.model, fam.x, fam.target)
    assert bool(ref.abs().max() > 0), "plain autograd gives an all-zero gradient: the check would prove nothing"
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-6 * float(ref.abs().max()))
    _record(fam, "grad", "ok")


def check_gradcam(fam: Family, request: pytest.FixtureRequest) -> None:
    expect(request, fam.case, "gradcam")
    _record(fam, "cam", "fail")
    ex = fam.explainer
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
    ref = reference_gradcam(fam.model, info, fam.x, target)
    assert ref.shape == ours.shape == fam.x.shape[2:]
    c = corr(ours, ref)
    assert c >= 0.99, (
        f"Grad-CAM at {key} ({info.layout} {info.shape}) correlates {c:.4f} with pytorch-grad-cam's "
        f"(ours in [{float(ours.min()):.3g}, {float(ours.max()):.3g}], theirs in [{float(ref.min()):.3g}, {float(ref.max()):.3g}])"
    )
    _record(fam, "cam", "ok")


def check_default(fam: Family, request: pytest.FixtureRequest) -> None:
    expect(request, fam.case, "default")
    _record(fam, "default", "fail")
    pooled = pooled_features(fam.model, fam.x)
    if pooled is None:
        _record(fam, "default", "n/a")
        pytest.skip("the model pools no grid (a class token, or a flattened fixed-size grid): no pooled grid to compare with")
    ex = fam.explainer
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
    _record(fam, "default", "ok")


def check_twin(fam: Family, request: pytest.FixtureRequest) -> None:
    expect(request, fam.case, "twin")
    _record(fam, "twin", "fail")
    bad = coincidences(fam.explainer.layers, fam.case.size, fam.twin_layers, fam.case.twin)
    assert not bad, f"{len(bad)} layers reported spatial by shape coincidence:\n" + "\n".join(bad[:20])
    _record(fam, "twin", "ok")


def check_widget(fam: Family, method: str, request: pytest.FixtureRequest) -> None:
    expect(request, fam.case, f"widget:{method}")
    problem = widget_outcome(fam.explorer, method)
    if problem is not None:
        fam.row.outcomes["widget"] = "fail"
    else:
        fam.row.outcomes.setdefault("widget", "ok")
    assert problem is None, problem
