"""Progress reports between batches of occlusion, SmoothGrad and IG, and cancellation through them (issue 17, item 2)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from saliency_widget.engine import Explainer
from saliency_widget.engine.progress import report, reporting
from saliency_widget.errors import Cancelled
from tests.helpers import assert_unchanged, seeded_rand, snapshot
from tests.nets import small_cnn

# 12x12 input: occlusion window 4, stride 4 -> patch starts 0, 4, 8 per axis -> 9 occluded copies.
CASES = [
    ("occlusion", {"window": 4, "stride": 4, "batch_size": 4}, [(0, 9), (4, 9), (8, 9)]),
    ("occlusion", {"window": 4, "stride": 4, "batch_size": 9}, [(0, 9)]),
    ("smoothgrad", {"n": 5, "batch_size": 2}, [(0, 5), (2, 5), (4, 5)]),
    ("integrated_gradients", {"steps": 4, "batch_size": 3}, [(0, 4), (3, 4)]),
]


def _explainer() -> Explainer:
    return Explainer(small_cnn(), seeded_rand(1, 3, 12, 12, seed=3))


@pytest.mark.parametrize(("method", "options", "expected"), CASES)
def test_batched_methods_report_before_each_batch(method: str, options: dict[str, Any], expected: list[tuple[int, int]]) -> None:
    seen: list[tuple[int, int]] = []
    with reporting(lambda done, total: seen.append((done, total))):
        _explainer().saliency(target=1, method=method, **options)
    assert seen == expected


@pytest.mark.parametrize(("method", "options", "expected"), CASES)
def test_a_callback_that_raises_stops_the_method_and_leaves_the_model_as_it_was(
    method: str, options: dict[str, Any], expected: list[tuple[int, int]]
) -> None:
    ex = _explainer()
    before = snapshot(ex.model)
    reference = ex.saliency(target=1, method=method, **options)
    seen: list[int] = []

    def stop_at_last_batch(done: int, total: int) -> None:
        seen.append(done)
        if (done, total) == expected[-1]:
            raise Cancelled("a newer request")

    with pytest.raises(Cancelled, match="a newer request"), reporting(stop_at_last_batch):
        ex.saliency(target=1, method=method, **options)
    assert seen == [d for d, _ in expected]
    assert_unchanged(ex.model, before)
    # the explainer still works, and gives the same map as before the stop
    torch.testing.assert_close(ex.saliency(target=1, method=method, **options), reference)


def test_report_without_a_callback_does_nothing() -> None:
    report(3, 7)  # no reporting() around: no error, nothing to call


def test_nested_reporting_restores_the_outer_callback() -> None:
    outer: list[tuple[int, int]] = []
    inner: list[tuple[int, int]] = []
    with reporting(lambda d, t: outer.append((d, t))):
        with reporting(lambda d, t: inner.append((d, t))):
            report(1, 2)
        report(2, 2)
        with pytest.raises(RuntimeError), reporting(None):
            raise RuntimeError("restored on the way out of an error too")
        report(0, 5)
    report(9, 9)
    assert inner == [(1, 2)] and outer == [(2, 2), (0, 5)]
