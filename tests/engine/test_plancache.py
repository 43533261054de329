"""The incremental occlusion plan is kept between calls and rebuilt when the model, its hooks or the inputs change."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest
import torch
from torch.testing import assert_close

import saliency_widget as sw
from saliency_widget.engine import plancache
from tests.helpers import seeded_randn
from tests.nets import sequential_cnn

OPTS: dict[str, Any] = {"window": 8, "stride": 4, "output": "logit"}


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the plans built (each one trace + one forward)."""
    plancache.clear_plans()
    calls: list[int] = []
    real = plancache.build_plan

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(plancache, "build_plan", counting)
    yield calls
    plancache.clear_plans()


def _setup(seed: int = 2) -> tuple[torch.nn.Module, torch.Tensor]:
    return sequential_cnn(seed=seed), seeded_randn(1, 3, 32, 32, seed=4)


def _full(model: torch.nn.Module, x: torch.Tensor, **opts: Any) -> torch.Tensor:
    return sw.saliency(model, x, 1, method="occlusion", incremental=False, **{**OPTS, **opts})


def test_a_second_map_of_the_same_image_reuses_the_plan(builds: list[int]) -> None:
    model, x = _setup()
    ex = sw.Explainer(model, x)
    first = ex.saliency(1, "occlusion", **OPTS)
    second = ex.saliency(2, "occlusion", **OPTS)  # another class: the same plan
    assert len(builds) == 1
    assert_close(first, _full(model, x))
    assert_close(second, sw.saliency(model, x, 2, method="occlusion", incremental=False, **OPTS))


def test_one_shot_calls_on_equal_inputs_share_it(builds: list[int]) -> None:
    model, x = _setup()
    a = sw.saliency(model, x, 1, method="occlusion", **OPTS)
    b = sw.saliency(model, x.clone(), 1, method="occlusion", **OPTS)  # another tensor, the same values
    assert len(builds) == 1
    assert_close(a, b)


@pytest.mark.parametrize("change", ["inplace", "load_state_dict", "data", "replace_module"])
def test_a_changed_model_gets_a_new_plan_and_the_right_map(builds: list[int], change: str) -> None:
    model, x = _setup()
    sw.saliency(model, x, 1, method="occlusion", **OPTS)
    other = sequential_cnn(seed=9)
    with torch.no_grad():
        if change == "inplace":
            model[0].weight.mul_(1.5)  # bumps the version counter
        elif change == "load_state_dict":
            model.load_state_dict(other.state_dict())
        elif change == "data":
            model[3].weight.data.copy_(other[3].weight)  # no version bump: the output check catches it
        else:
            model[3] = other[3]
    got = sw.saliency(model, x, 1, method="occlusion", **OPTS)
    assert len(builds) == 2
    assert_close(got, _full(model, x))


def test_other_inputs_window_or_stride_get_their_own_plan(builds: list[int]) -> None:
    model, x = _setup()
    sw.saliency(model, x, 1, method="occlusion", **OPTS)
    sw.saliency(model, x + 0.5, 1, method="occlusion", **OPTS)
    sw.saliency(model, x, 1, method="occlusion", **{**OPTS, "window": 12})
    sw.saliency(model, x, 1, method="occlusion", **{**OPTS, "stride": 6})
    assert len(builds) == 4
    sw.saliency(model, x, 1, method="occlusion", **{**OPTS, "stride": 6})  # the most recent is kept
    assert len(builds) == 4


def test_a_user_hook_added_later_is_run_and_the_plan_used_again_once_removed(builds: list[int]) -> None:
    model, x = _setup()
    ex = sw.Explainer(model, x)
    ex.saliency(1, "occlusion", **OPTS)
    seen: list[int] = []
    handle = model[3].register_forward_hook(lambda m, i, o: seen.append(o.shape[0]))
    try:
        hooked = ex.saliency(1, "occlusion", **OPTS)
    finally:
        handle.remove()
    # the kept plan would call F.conv2d directly and skip the hook: the full recompute ran it
    assert sum(seen) >= 1 + 49  # the unoccluded image and every occluded copy
    again = ex.saliency(1, "occlusion", **OPTS)
    assert len(builds) == 2  # the hooked call asked build_plan (which refused); afterwards the kept plan
    assert_close(hooked, again)


def test_plans_are_bounded_per_model_and_go_with_the_model(builds: list[int]) -> None:
    model, x = _setup()
    for i in range(plancache.MAX_PER_MODEL + 2):
        sw.saliency(model, x + i, 1, method="occlusion", **OPTS)
    assert plancache.kept_plans(model) == plancache.MAX_PER_MODEL
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


def test_a_plan_made_under_autocast_is_not_used_outside_it(builds: list[int]) -> None:
    model, x = _setup()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        sw.saliency(model, x, 1, method="occlusion", **OPTS)
    got = sw.saliency(model, x, 1, method="occlusion", **OPTS)
    assert len(builds) == 2  # its kept outputs are bf16: a float32 map needs its own plan
    assert_close(got, _full(model, x))


def test_another_input_shape_gets_its_own_plan_and_the_right_map(builds: list[int]) -> None:
    model, x = _setup()
    sw.saliency(model, x, 1, method="occlusion", **OPTS)
    wide = seeded_randn(1, 3, 32, 40, seed=4)  # same first rows, another shape
    got = sw.saliency(model, wide, 1, method="occlusion", **OPTS)
    assert len(builds) == 2
    assert_close(got, _full(model, wide))


def test_a_replaced_parameter_gets_a_new_plan(builds: list[int]) -> None:
    model, x = _setup()
    sw.saliency(model, x, 1, method="occlusion", **OPTS)
    model[0].bias = torch.nn.Parameter(model[0].bias.detach() + 0.25)  # a new tensor object, no version bump
    got = sw.saliency(model, x, 1, method="occlusion", **OPTS)
    assert len(builds) == 2
    assert_close(got, _full(model, x))


@pytest.mark.parametrize("kind", ["pre-hook on a layer", "global forward hook", "global pre-hook"])
def test_other_hooks_added_later_are_run_and_never_cached(builds: list[int], kind: str) -> None:
    model, x = _setup()
    ex = sw.Explainer(model, x)
    ex.saliency(1, "occlusion", **OPTS)
    seen: list[int] = []

    def pre(m: torch.nn.Module, args: Any) -> None:
        if m is model[3]:
            seen.append(args[0].shape[0])

    def post(m: torch.nn.Module, args: Any, out: Any) -> None:
        if m is model[3]:
            seen.append(out.shape[0])

    if kind == "pre-hook on a layer":
        handle = model[3].register_forward_pre_hook(pre)
    elif kind == "global forward hook":
        handle = torch.nn.modules.module.register_module_forward_hook(post)
    else:
        handle = torch.nn.modules.module.register_module_forward_pre_hook(pre)
    try:
        hooked = ex.saliency(1, "occlusion", **OPTS)
        assert plancache.kept_plans(model) == 1  # the hooked call kept nothing new
    finally:
        handle.remove()
    assert sum(seen) >= 1 + 49  # the full recompute ran the hook on every copy
    assert_close(hooked, ex.saliency(1, "occlusion", **OPTS))
    assert len(builds) == 2
