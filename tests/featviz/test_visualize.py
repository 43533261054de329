"""``visualize`` / ``render``: layouts, determinism, model hygiene, fooling, progress, errors."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import saliency_widget as sw
from saliency_widget.engine.capture import forward_to
from saliency_widget.errors import Cancelled, InputError, LayerError, SaliencyError
from saliency_widget.featviz import objectives as O
from saliency_widget.featviz import render
from tests.featviz.nets import LinearConv, channels_last_net, token_net
from tests.helpers import assert_unchanged, snapshot
from tests.nets import TrainModeBNDropout, seeded, small_cnn

# ----------------------------------------------------------------------------- every objective on every layout

LAYOUTS = {
    "NCHW": (small_cnn, "features.4", lambda t: t),
    "NHWC": (channels_last_net, "fc", lambda t: t.permute(0, 3, 1, 2)),
    "tokens": (token_net, "mix", lambda t: t[:, 1:].reshape(t.shape[0], 4, 4, -1).permute(0, 3, 1, 2)),
}


def _nchw(kind: str, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The layer's (N, C, H, W) view computed independently of featviz."""
    _, layer, view = LAYOUTS[kind]
    with torch.no_grad():
        return view(forward_to(model, inputs, layer))


@pytest.mark.parametrize("kind", list(LAYOUTS))
def test_every_objective_reads_the_layer_in_its_layout(kind: str) -> None:
    make, layer, _ = LAYOUTS[kind]
    model = make()
    target = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(1))
    objs = [O.channel(layer, 1), O.neuron(layer, 2), O.neuron(layer, 0, y=1, x=3), O.dream(layer), O.class_logit(2), O.inversion(layer, target)]
    vis = render(model, objs, steps=3, size=16, param="fourier")
    assert vis.images.shape == (6, 3, 16, 16) and vis.history.shape == (3, 6)
    assert float(vis.images.min()) >= 0.0 and float(vis.images.max()) <= 1.0
    a = _nchw(kind, model, vis.inputs)
    ref = _nchw(kind, model, target[None])
    with torch.no_grad():
        logits = model(vis.inputs)
    expected = torch.stack([
        a[0, 1].mean(), a[1, 2, a.shape[2] // 2, a.shape[3] // 2], a[2, 0, 1, 3], a[3].pow(2).mean(), logits[4, 2],
        -(a[5] - ref[0]).pow(2).sum() / ref.pow(2).sum(),
    ])  # fmt: skip
    assert_close(vis.values, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("param", ["pixel", "fourier", "maco"])
def test_optimisation_raises_the_objective(param: str) -> None:
    vis = render(small_cnn(), [O.channel("features.3", c) for c in range(3)], steps=12, size=16, param=param, transforms=None)
    assert bool((vis.values > vis.history[0] + 1e-3).all()), (vis.values, vis.history)


@pytest.mark.parametrize("redirect", [True, False])
def test_redirected_relu_lifts_a_channel_that_is_off_everywhere(redirect: bool) -> None:
    # channel 1 of features.4 (a ReLU) is zero on the start image: its plain gradient is zero, so
    # only the redirected rule moves its pre-activation (features.3) up.
    model = small_cnn()
    objs = [O.channel("features.4", 1)]
    start = render(model, objs, steps=1, size=16, redirect_relu=redirect)
    end = render(model, objs, steps=40, size=16, redirect_relu=redirect)
    assert float(start.values[0]) == 0.0
    with torch.no_grad():
        pre0, pre1 = (float(forward_to(model, v.inputs, "features.3")[0, 1].mean()) for v in (start, end))
    assert (pre1 > pre0 + 0.002) if redirect else (pre1 == pytest.approx(pre0, abs=1e-6))


# ----------------------------------------------------------------------------- determinism and hygiene


def _run(model: nn.Module, seed: int = 0, **kw: Any) -> sw.Visualization:
    return render(model, [O.channel("features.4", 0), O.class_logit(1)], steps=3, size=16, seed=seed, **kw)


def test_a_seeded_run_repeats_exactly_and_leaves_the_global_rng_alone() -> None:
    model = small_cnn()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a, b = _run(model), _run(model)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.images, b.images) and torch.equal(a.history, b.history)
    c = _run(model, seed=1)
    assert not torch.equal(a.images, c.images)


def test_a_user_callable_transform_is_seeded_too() -> None:
    def noisy(x: torch.Tensor) -> torch.Tensor:
        return x + 0.05 * torch.randn_like(x)

    a, b = _run(small_cnn(), transforms=noisy), _run(small_cnn(), transforms=[noisy, noisy])
    assert torch.equal(a.images, _run(small_cnn(), transforms=noisy).images)
    assert not torch.equal(a.images, b.images)


def test_batch_size_splits_the_batch_without_changing_the_images() -> None:
    model = small_cnn()
    whole = _run(model)
    parts = _run(model, batch_size=1)
    assert_close(parts.images, whole.images, atol=1e-4, rtol=0)


class _Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, module: nn.Module, args: Any, out: Any) -> None:
        self.calls += 1


def test_the_model_is_untouched_and_its_own_hooks_still_run() -> None:
    model = seeded(TrainModeBNDropout, 2).train()  # train mode: BatchNorm stats would change in a train forward
    model.conv.weight.requires_grad_(False)
    counter = _Counter()
    handle = model.conv.register_forward_hook(counter)
    before = snapshot(model)
    render(model, [O.channel("conv", 1), O.class_logit(0)], steps=2, size=8, param="maco", init="noise")
    assert_unchanged(model, before)
    assert counter.calls > 0
    handle.remove()


def test_cancel_from_progress_stops_and_leaves_the_model_untouched() -> None:
    model = small_cnn().train()
    before = snapshot(model)
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done == 2:
            raise Cancelled("superseded")

    with pytest.raises(Cancelled):
        render(model, O.channel("features.4", 0), steps=10, size=16, progress=progress)
    assert seen == [(1, 10), (2, 10)]
    assert_unchanged(model, before)


def test_progress_counts_every_step_of_every_batch() -> None:
    seen: list[tuple[int, int]] = []
    render(small_cnn(), [O.channel("features.4", c) for c in range(3)], steps=2, size=16, batch_size=2, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


# ----------------------------------------------------------------------------- fooling


def test_stop_at_probability_freezes_each_image_at_the_first_step_it_reaches_p() -> None:
    model = LinearConv()  # 2 classes: logits (l0, 0), so p(class 0) = sigmoid(l0) and l0 is the objective
    with torch.no_grad():
        model.conv.weight.mul_(8.0)
    vis = render(model, [O.class_logit(0), O.class_logit(0)], steps=100, size=8, param="pixel", transforms=None,
                 init="noise", seed=3, stop_at_probability=0.99)  # fmt: skip
    assert vis.probabilities is not None
    p = torch.sigmoid(vis.history)
    for i in range(2):
        stop = int(vis.steps[i])
        assert stop < 100
        assert float(p[stop, i]) >= 0.99 and bool((p[:stop, i] < 0.99).all())
        assert_close(vis.probabilities[i, 0], p[stop, i])  # the returned image is the one that reached p
    # the run ends when every image has stopped
    assert vis.history.shape[0] == int(vis.steps.max()) + 1


def test_disguised_fooling_keeps_the_change_within_max_change_and_reports_it() -> None:
    model = LinearConv()
    start = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1
    vis = render(model, O.class_logit(1) - O.class_logit(0), steps=20, size=8, param="pixel", transforms=None, init=start, max_change=0.03)
    assert vis.change_linf is not None and vis.change_l2 is not None
    assert float(vis.change_linf[0]) <= 0.03 + 1e-5
    assert_close(vis.change_l2, (vis.images - start).flatten(1).norm(dim=1))
    assert float(vis.values[0]) > float(vis.history[0, 0])


def test_stop_at_probability_on_the_bundled_model() -> None:
    from saliency_widget.models import shapes_cnn

    vis = sw.visualize(shapes_cnn(), sw.objectives.class_logit("star"), steps=60, param="pixel", transforms=None, init="noise",
                       lr=0.1, stop_at_probability=0.99, size=64)  # fmt: skip
    assert vis.probabilities is not None and float(vis.probabilities[0, 4]) >= 0.99


# ----------------------------------------------------------------------------- the public wrapper


def test_visualize_uses_the_bundled_models_preprocessing_and_size() -> None:
    from saliency_widget.data import MEAN, STD
    from saliency_widget.models import shapes_cnn

    vis = sw.visualize(shapes_cnn(), sw.objectives.channel("features.relu1", 0), steps=1)
    assert vis.images.shape == (1, 3, 128, 128)
    expected = (vis.images - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    assert_close(vis.inputs, expected)


# ----------------------------------------------------------------------------- bad arguments: one-line errors


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"objectives": O.channel("nope", 0)}, LayerError, ["'nope'", "features.4"]),
        ({"objectives": O.channel("features.4", 6)}, InputError, ["channel 6", "0..5"]),
        ({"objectives": O.neuron("features.4", 0, y=9)}, InputError, ["y=9", "0..7"]),
        ({"objectives": O.class_logit(3)}, InputError, ["class 3", "0..2"]),
        ({"objectives": O.class_logit("cat")}, InputError, ["'cat'"]),
        ({"steps": 0}, InputError, ["steps=0", ">= 1"]),
        ({"param": "fft"}, InputError, ["'fft'", "'fourier'", "'maco'"]),
        ({"transforms": "strong"}, InputError, ["'strong'", "'standard'"]),
        ({"init": torch.rand(3, 8, 8)}, InputError, ["8x8", "16x16"]),
        ({"init": torch.rand(3, 16, 16) * 3}, InputError, ["[0, 1]"]),
        ({"objectives": O.inversion("features.4", torch.rand(3, 8, 8))}, InputError, ["8x8", "16x16"]),
        ({"objectives": []}, InputError, ["non-empty list"]),
        ({"stop_at_probability": 1.5}, InputError, ["1.5"]),
        ({"stop_at_probability": 0.9}, InputError, ["class_logit", "channel('features.4', 0)"]),
        ({"max_change": 0.1}, InputError, ["param='pixel'"]),
        ({"lr": -1}, InputError, ["lr=-1"]),
    ],
    ids=lambda v: None,
)
def test_bad_arguments_give_one_line_errors_naming_the_value(kwargs: dict[str, Any], error: type[SaliencyError], words: list[str]) -> None:
    args: dict[str, Any] = {"objectives": O.channel("features.4", 0), "steps": 1, "size": 16, **kwargs}
    with pytest.raises(error) as info:
        render(small_cnn(), args.pop("objectives"), **args)
    msg = str(info.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg


def test_objectives_refuse_to_multiply_each_other() -> None:
    with pytest.raises(InputError, match="compose with"):
        O.channel("a", 0) * O.channel("a", 1)  # type: ignore[operator]


def test_a_layer_changed_in_place_later_is_read_before_the_change() -> None:
    # torchvision style: conv -> ReLU(inplace=True) overwrites the conv's output; the objective must
    # still read the conv's own (negative-capable) values.
    model = seeded(lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(4, 2, 3, padding=1),
                                         nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten()), 0).eval()  # fmt: skip
    vis = render(model, [O.channel("0", 1), O.channel("2", 0) + O.class_logit(1)], steps=2, size=12)
    with torch.no_grad():
        conv = forward_to(model, vis.inputs, "0", clone=True)
        logits = model(vis.inputs)
    assert_close(vis.values[0], conv[0, 1].mean())
    assert_close(vis.values[1], forward_to(model, vis.inputs, "2", clone=True)[1, 0].mean() + logits[1, 1])
