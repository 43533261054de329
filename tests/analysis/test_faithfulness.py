"""Deletion / insertion curves: literal curves on a hand-built linear model, and the contract."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from saliency_widget.analysis import FaithfulnessResult, deletion_insertion
from saliency_widget.analysis.faithfulness import RANDOM, blurred, pixel_ranking
from saliency_widget.errors import InputError, MethodError
from tests.helpers import assert_unchanged, seeded_rand, snapshot

# The hand-built model: a 1x2x2 image, logits (w . x, 0) with w = (2, 1, 0.5, 0) over the
# flat pixel index, so p(class 0) = sigmoid(sum of w over the pixels still equal to x).
W = torch.tensor([2.0, 1.0, 0.5, 0.0])
X = torch.ones(1, 1, 2, 2)
MAP = W.view(1, 1, 2, 2)  # the map ranks pixels 0, 1, 2, 3 (most relevant first)

# sigmoid of the logits that occur below
S0, S05, S15, S175, S2, S25, S3, S35 = (
    0.5, 0.6224593312, 0.8175744762, 0.8519528020, 0.8807970780, 0.9241418200, 0.9525741268, 0.9706877692,
)


def linear_model() -> nn.Module:
    lin = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.stack([W, torch.zeros(4)]))
    return nn.Sequential(nn.Flatten(), lin)


def run(**kw: Any) -> FaithfulnessResult:
    opts: dict[str, Any] = {"maps": {"w": MAP}, "target": 0, "steps": 4, "baseline": "zeros"}
    opts.update(kw)
    return deletion_insertion(linear_model(), X, **opts)


@pytest.mark.parametrize(
    ("kind", "order", "expected"),
    [
        # deletion MoRF removes pixel 0, 1, 2, 3: logits 3.5, 1.5, 0.5, 0, 0
        ("deletion", "morf", [S35, S15, S05, S0, S0]),
        # insertion MoRF from zeros inserts pixel 0, 1, 2, 3: logits 0, 2, 3, 3.5, 3.5
        ("insertion", "morf", [S0, S2, S3, S35, S35]),
        # deletion LeRF removes pixel 3, 2, 1, 0: logits 3.5, 3.5, 3, 2, 0
        ("deletion", "lerf", [S35, S35, S3, S2, S0]),
        # insertion LeRF inserts pixel 3, 2, 1, 0: logits 0, 0, 0.5, 1.5, 3.5
        ("insertion", "lerf", [S0, S0, S05, S15, S35]),
    ],
)
def test_literal_curves_zero_baseline(kind: str, order: str, expected: list[float]) -> None:
    res = run(order=order)
    assert_close(res.curve(kind, "w"), torch.tensor([expected]))
    # trapezoid over fractions 0, 1/4, ..., 1: h/2 * (c0 + 2 c1 + 2 c2 + 2 c3 + c4)
    e = expected
    assert_close(res.auc(kind, "w"), torch.tensor([0.125 * (e[0] + 2 * (e[1] + e[2] + e[3]) + e[4])]), check_dtype=False)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        # baseline 0.5 everywhere: removing pixel p lowers the logit by w_p / 2: 3.5, 2.5, 2, 1.75, 1.75
        ("deletion", [S35, S25, S2, S175, S175]),
        # inserting pixel p raises the logit from 1.75 by w_p / 2: 1.75, 2.75, 3.25, 3.5, 3.5 (checked below)
        ("insertion", [S175, 0.9399133498, 0.9626731127, S35, S35]),
    ],
)
def test_literal_curves_tensor_baseline(kind: str, expected: list[float]) -> None:
    res = run(baseline=torch.full((1, 2, 2), 0.5))
    assert_close(res.curve(kind, "w"), torch.tensor([expected]))
    assert res.baseline[kind] == "tensor (1, 2, 2)"


def test_two_steps_use_equal_chunks() -> None:
    res = run(steps=2)
    assert_close(res.fractions, torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    assert_close(res.curve("deletion", "w"), torch.tensor([[S35, S05, S0]]))  # pixels 0 and 1 go together


def test_uneven_chunks_use_floor_of_the_fraction() -> None:
    res = run(steps=3)  # 4 pixels in 3 steps: 0, 1, 2, 4 perturbed
    assert_close(res.fractions, torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64))
    assert_close(res.curve("deletion", "w"), torch.tensor([[S35, S15, S05, S0]]))


@pytest.mark.parametrize("order", ["morf", "lerf"])
def test_ties_are_broken_by_pixel_index(order: str) -> None:
    res = run(maps={"flat": torch.ones(1, 3, 2, 2)}, order=order)  # all tied: pixel 0, 1, 2, 3 in both orders
    assert_close(res.curve("deletion", "flat"), torch.tensor([[S35, S15, S05, S0, S0]]))
    assert_close(pixel_ranking(torch.ones(1, 2, 2), order), torch.tensor([[0, 1, 2, 3]]))


def test_ranking_sums_absolute_values_over_channels() -> None:
    m = torch.tensor([[[[1.0, -3.0], [0.5, 0.0]], [[-1.0, 0.0], [0.0, 4.0]]]])  # |.| sums: 2, 3, 0.5, 4
    assert_close(pixel_ranking(m, "morf"), torch.tensor([[2, 1, 3, 0]]))
    assert_close(pixel_ranking(m, "lerf"), torch.tensor([[1, 2, 0, 3]]))


def test_default_baselines_follow_rise() -> None:
    x = seeded_rand(1, 1, 2, 2, seed=3)
    res = deletion_insertion(linear_model(), x, maps={"w": MAP}, target=0, steps=4)
    assert res.baseline == {"deletion": "zeros", "insertion": "blur"}
    # insertion starts at the blurred image, deletion ends at zeros
    p_blur = torch.sigmoid((blurred(x).flatten() * W).sum())
    assert_close(res.curve("insertion", "w")[0, 0], p_blur)
    assert_close(res.curve("deletion", "w")[0, -1], torch.tensor(S0))


def test_blur_of_a_constant_image_is_the_image() -> None:
    x = torch.full((2, 3, 5, 7), 0.25)
    assert_close(blurred(x), x)


def test_random_reference_is_seeded_and_shares_end_points() -> None:
    a, b = run(seed=1), run(seed=1)
    assert_close(a.curve("deletion", RANDOM), b.curve("deletion", RANDOM))
    rd = a.curve("deletion", RANDOM)
    assert_close(rd[:, [0, -1]], torch.tensor([[S35, S0]]))
    # its middle points are sigmoids of sums of w over some subset of pixels, never above the MoRF-free image
    assert bool((rd <= S35 + 1e-6).all())


def test_random_orders_differ_between_seeds() -> None:
    x = seeded_rand(2, 1, 8, 8, seed=0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    torch.manual_seed(0)
    r0 = deletion_insertion(model, x, maps={"m": x}, steps=8, seed=0)
    r1 = deletion_insertion(model, x, maps={"m": x}, steps=8, seed=1)
    assert not torch.equal(r0.curve("deletion", RANDOM), r1.curve("deletion", RANDOM))
    assert torch.equal(r0.curve("deletion", "m"), r1.curve("deletion", "m"))


def test_table_sorts_by_quality() -> None:
    # "w" in MoRF order is the best possible ranking for this model; its reverse the worst
    res = run(maps={"w": MAP, "reverse": torch.tensor([0.0, 0.5, 1.0, 2.0]).view(1, 1, 2, 2)})
    lines = res.table().splitlines()
    assert lines[0].startswith("| method | deletion AUC")
    assert lines[2].startswith("| w |")
    assert lines[-1].startswith("| reverse |")
    assert any("random order" in line for line in lines)


def test_curves_and_aucs_have_documented_shapes(model: nn.Module, small_set: Any) -> None:
    x = torch.stack([small_set[i][0] for i in range(3)])
    res = deletion_insertion(model, x, methods=["gradient"], steps=5, batch_size=64)
    assert res.methods == ["gradient"]
    assert res.curve("insertion", "gradient").shape == (3, 6)
    assert res.auc("deletion", RANDOM).shape == (3,)
    assert bool(((res.auc("deletion", "gradient") >= 0) & (res.auc("deletion", "gradient") <= 1)).all())


def test_batch_size_does_not_change_the_curves(model: nn.Module, small_set: Any) -> None:
    x = torch.stack([small_set[i][0] for i in range(2)])
    maps = {"m": seeded_rand(2, 1, *x.shape[-2:], seed=5)}
    one = deletion_insertion(model, x, maps=maps, steps=6, batch_size=1)
    big = deletion_insertion(model, x, maps=maps, steps=6, batch_size=1000)
    for kind in ("deletion", "insertion"):
        for m in ("m", RANDOM):
            assert_close(one.curve(kind, m), big.curve(kind, m), atol=1e-5, rtol=1e-4)


def test_model_and_inputs_are_unchanged(model: nn.Module, small_set: Any) -> None:
    model.train()
    try:
        before = snapshot(model)
        x = torch.stack([small_set[i][0] for i in range(2)])
        x0 = x.clone()
        deletion_insertion(model, x, methods=["gradient", "guided_backprop"], steps=4)
        assert_unchanged(model, before)
        assert torch.equal(x, x0)
    finally:
        model.eval()


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"steps": 0}, "steps must be an int in 1..4, got 0"),
        ({"steps": 5}, "steps must be an int in 1..4, got 5"),
        ({"steps": 2.0}, "steps must be an int"),
        ({"batch_size": 0}, "batch_size must be an int in >= 1, got 0"),
        ({"seed": -1}, "seed must be an int"),
        ({"order": "most"}, "order must be one of 'morf', 'lerf', got 'most'"),
        ({"baseline": "black"}, "baseline must be one of 'zeros', 'blur'.*got 'black'"),
        ({"baseline": 0.0}, "baseline must be one of .* got float"),
        ({"baseline": torch.zeros(3, 3)}, r"baseline tensor of shape \(3, 3\) cannot be broadcast"),
        ({"baseline": torch.zeros(1, 2, 2, dtype=torch.long)}, "baseline tensor must be floating point"),
        ({"maps": None}, "give maps .* or methods"),
        ({"maps": {"w": torch.ones(1, 3, 3)}}, r"map 'w' has shape \(1, 3, 3\)"),
        ({"maps": {"w": torch.full((1, 2, 2), float("nan"))}}, "map 'w' contains NaN"),
        ({"maps": {RANDOM: MAP}}, "other than 'random'"),
        ({"maps": [MAP]}, "maps must be a dict"),
        ({"methods": "gradient"}, "use \\['gradient'\\]"),
        ({"methods": ["w"]}, "both in maps and in methods"),
    ],
)
def test_bad_arguments_raise_input_errors(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(InputError, match=match):
        run(**kw)


def test_unknown_method_raises_method_error() -> None:
    with pytest.raises(MethodError, match="nope"):
        run(maps=None, methods=["nope"])


@pytest.mark.parametrize(
    ("kind", "method", "match"),
    [("removal", "w", "kind must be one of 'deletion', 'insertion', got 'removal'"), ("deletion", "x", "no curve for method 'x'; choose from 'w', 'random'")],
)
def test_bad_curve_names_raise(kind: str, method: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        run().curve(kind, method)


def test_one_kind_without_reference_gives_the_same_curve() -> None:
    res = run(kinds=("deletion",), reference=False)
    assert_close(res.curve("deletion", "w"), torch.tensor([[S35, S15, S05, S0, S0]]))
    with pytest.raises(InputError, match="no insertion curve was computed"):
        res.curve("insertion", "w")
    with pytest.raises(InputError, match="choose from 'w'$"):
        res.curve("deletion", RANDOM)


@pytest.mark.parametrize("kinds", [(), ("removal",), "deletion", ("deletion", "deletion")])
def test_bad_kinds_raise(kinds: Any) -> None:
    with pytest.raises(InputError, match="kinds must be a non-empty sequence"):
        run(kinds=kinds)
