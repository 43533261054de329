"""Progressive maps: occlusion coarse to fine, SmoothGrad and IG as running averages (issue 29, item 3).

Each partial map has the final map's shape and a growing fraction done; the final map equals
the one-shot call bit for bit; literal partial maps on hand-made nets.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import saliency_widget as sw
from saliency_widget.engine.occlusion import refinement_levels
from saliency_widget.engine.progress import previewing, reporting
from saliency_widget.errors import Cancelled
from tests.helpers import assert_unchanged, seeded_randn, snapshot
from tests.nets import small_cnn


class WeightedSum(nn.Module):
    """Logits ``[sum_j w_j x_j, 0]`` over the pixels of a ``(N, 1, 1, 5)`` input: a patch's drop is ``w_j x_j``."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = (x.flatten(1) * self.w).sum(1, keepdim=True)
        return torch.cat([s, torch.zeros_like(s)], 1)


class HalfSquare(nn.Module):
    """Logits ``[sum(x**2) / 2, 0]``: the gradient at ``alpha * x`` is ``alpha * x``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = 0.5 * (x.flatten(1) ** 2).sum(1, keepdim=True)
        return torch.cat([s, torch.zeros_like(s)], 1)


def _watch(ex: sw.Explainer, method: str, **options: Any) -> tuple[torch.Tensor, list[tuple[float, torch.Tensor]]]:
    seen: list[tuple[float, torch.Tensor]] = []
    final = ex.saliency(target=0, method=method, partial=lambda f, m: seen.append((f, m.clone())), **options)
    return final, seen


# ---------------------------------------------------------------- coarse-to-fine order
def test_refinement_levels_literal() -> None:
    assert [len(level) for level in refinement_levels(27, 27)] == [9, 16, 39, 132, 533]
    assert refinement_levels(5, 5)[0] == [0, 2, 4, 10, 12, 14, 20, 22, 24]
    assert refinement_levels(1, 5) == [[0, 2, 4], [1, 3]]
    assert refinement_levels(2, 2) == [[0, 1, 2, 3]]


@pytest.mark.parametrize(("ny", "nx"), [(1, 1), (3, 7), (27, 27), (14, 9)])
def test_refinement_levels_hold_every_position_once(ny: int, nx: int) -> None:
    flat = [p for level in refinement_levels(ny, nx) for p in level]
    assert sorted(flat) == list(range(ny * nx))


# ---------------------------------------------------------------- literal partial maps
def test_occlusion_partial_literal() -> None:
    # window 1, stride 1 on a 1x5 image: level 0 scores positions 0, 2, 4 (drops 1, 6, 15), and
    # the partial map gives position 1 the nearest measured one (0: ties go to the lower index), 3 -> 2
    x = torch.tensor([[[[1.0, 1.0, 2.0, 3.0, 3.0]]]])
    ex = sw.Explainer(WeightedSum(), x)
    final, seen = _watch(ex, "occlusion", window=1, stride=1, output="logit")
    assert len(seen) == 1
    fraction, part = seen[0]
    assert fraction == pytest.approx(3 / 5)
    assert_close(part, torch.tensor([[[[1.0, 1.0, 6.0, 6.0, 15.0]]]]))
    assert_close(final, torch.tensor([[[[1.0, 2.0, 6.0, 12.0, 15.0]]]]))


def test_integrated_gradients_partial_literal() -> None:
    # riemann_middle, 4 steps, batches of 2: the first batch spans the path (alphas 1/8 and 5/8),
    # so the running estimate is x * x * (1/8 + 5/8) / 2 = 0.375 x**2; the final one 0.5 x**2
    x = torch.tensor([[[[1.0, -2.0], [3.0, 0.5]]]])
    ex = sw.Explainer(HalfSquare(), x)
    final, seen = _watch(ex, "integrated_gradients", steps=4, batch_size=2, scheme="riemann_middle")
    assert [f for f, _ in seen] == [0.5]
    assert_close(seen[0][1], 0.375 * x**2)
    assert_close(final, 0.5 * x**2)


def test_smoothgrad_partial_is_the_mean_of_the_samples_done() -> None:
    # independent reference: the same noise (seeded), each noisy copy's gradient by autograd
    net = small_cnn()
    x = seeded_randn(1, 3, 16, 16, seed=3)
    ex = sw.Explainer(net, x)
    final, seen = _watch(ex, "smoothgrad", n=6, batch_size=4, noise=0.2, seed=5)
    span = float(x.max() - x.min())
    gen = torch.Generator().manual_seed(5)
    eps = torch.randn((1, 6, 3, 16, 16), generator=gen, dtype=torch.float64).float()
    grads = []
    for k in range(6):
        xi = (x + 0.2 * span * eps[:, k]).requires_grad_(True)
        net(xi)[0, 0].backward()
        assert xi.grad is not None
        grads.append(xi.grad)
    assert [f for f, _ in seen] == [4 / 6]
    assert_close(seen[0][1], torch.stack(grads[:4]).mean(0), rtol=1e-5, atol=1e-6)
    assert_close(final, torch.stack(grads).mean(0), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- final == one-shot, bit for bit
CASES = [
    ("occlusion", {"window": 4, "stride": 2}),
    ("occlusion", {"window": 4, "stride": 2, "incremental": False, "batch_size": 5}),
    ("integrated_gradients", {"steps": 10, "batch_size": 3}),
    ("smoothgrad", {"n": 7, "batch_size": 2}),
]


@pytest.mark.parametrize(("method", "options"), CASES)
@pytest.mark.parametrize("n_images", [1, 2])
def test_final_map_equals_one_shot(method: str, options: dict[str, Any], n_images: int) -> None:
    net = small_cnn()
    x = seeded_randn(n_images, 3, 16, 16, seed=1)
    before = snapshot(net)
    one_shot = sw.Explainer(net, x).saliency(target=0, method=method, **options)
    final, seen = _watch(sw.Explainer(net, x), method, **options)
    torch.testing.assert_close(final, one_shot, rtol=0, atol=0)
    assert len(seen) >= 2
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and 0 < fractions[0] and fractions[-1] < 1
    assert all(m.shape == final.shape and bool(torch.isfinite(m).all()) for _, m in seen)
    assert_unchanged(net, before)


def test_occlusion_partials_refine_towards_the_final_map() -> None:
    net = small_cnn()
    x = seeded_randn(1, 3, 32, 32, seed=2)
    final, seen = _watch(sw.Explainer(net, x), "occlusion", window=4, stride=2, output="logit")
    errors = [float((m - final).abs().mean()) for _, m in seen]
    assert errors[-1] < errors[0]
    # the first partial comes after the coarse level only: 9 of the 15 x 15 positions
    assert seen[0][0] == pytest.approx(9 / 225)


def test_previewing_context_reaches_the_method_and_restores() -> None:
    seen: list[float] = []
    ex = sw.Explainer(small_cnn(), seeded_randn(1, 3, 16, 16, seed=4))
    with previewing(lambda f, _m: seen.append(f)):
        ex.saliency(target=0, method="smoothgrad", n=4, batch_size=2)
        ex.saliency(target=0, method="gradient")  # one pass: no partial map
    assert seen == [0.5]
    ex.saliency(target=0, method="smoothgrad", n=4, batch_size=2)
    assert seen == [0.5]


def test_partial_callback_may_cancel_and_the_model_is_unchanged() -> None:
    net = small_cnn()
    before = snapshot(net)
    ex = sw.Explainer(net, seeded_randn(1, 3, 16, 16, seed=4))

    def stop(_f: float, _m: torch.Tensor) -> None:
        raise Cancelled("seen enough")

    with pytest.raises(Cancelled):
        ex.saliency(target=0, method="occlusion", window=4, stride=2, partial=stop)
    assert_unchanged(net, before)
    with reporting(lambda d, t: None):  # progress and previews together
        assert ex.saliency(target=0, method="gradient", partial=stop).shape == (1, 3, 16, 16)
