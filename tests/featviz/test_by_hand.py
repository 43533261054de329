"""Feature visualization on a 1x1 linear conv: the gradient-ascent step and each penalty, by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from saliency_widget.featviz import objectives as O
from saliency_widget.featviz import render
from saliency_widget.featviz.params import COLOR_CORRELATION, make_param
from tests.featviz.nets import LinearConv


def sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


GREY = torch.full((1, 3, 8, 8), 0.5)


def test_one_sgd_step_is_the_gradient_by_hand() -> None:
    # channel 0 = mean over 64 pixels of (x_R - 2 x_G + 0.5 x_B), x = sigmoid(p), p = 0 at grey.
    # d/dp = w_k * sigmoid'(0) / 64 = w_k / 256; with lr = 256 the step is p_k = w_k.
    vis = render(LinearConv(), O.channel("conv", 0), steps=1, size=8, param="pixel", transforms=None, optimizer="sgd", lr=256.0, init=GREY)
    expected = torch.tensor([sig(1.0), sig(-2.0), sig(0.5)]).view(1, 3, 1, 1).expand(1, 3, 8, 8)
    assert_close(vis.images, expected)
    assert_close(vis.values, torch.tensor([sig(1.0) - 2 * sig(-2.0) + 0.5 * sig(0.5)]))
    assert_close(vis.history, torch.tensor([[0.5 - 1.0 + 0.25]]))  # the value before the step


def test_one_adam_step_moves_each_pixel_by_lr_in_the_gradients_sign() -> None:
    # Adam's first step is lr * g / (|g| + eps) = lr * sign(g); a zero gradient (channel 1) moves nothing.
    vis = render(LinearConv(), [O.channel("conv", 0), O.channel("conv", 1)], steps=1, size=8, param="pixel", transforms=None, lr=0.1, init=GREY)
    assert_close(vis.images[0, :, 0, 0], torch.tensor([sig(0.1), sig(-0.1), sig(0.1)]), atol=1e-5, rtol=0)
    assert_close(vis.images[1], GREY[0])


def test_l2_penalty_step_by_hand() -> None:
    # objective = -l2(0.5) = -mean((x - 0.5)^2) over 3 * 4 * 4 values; at x0 = sigmoid(p0) the
    # gradient in p is -2 (x0 - 0.5) x0 (1 - x0) / 48.
    x0 = torch.full((1, 3, 4, 4), 0.8)
    vis = render(LinearConv(), -O.l2(), steps=1, size=4, param="pixel", transforms=None, optimizer="sgd", lr=48.0, init=x0)
    p1 = math.log(0.8 / 0.2) - 2 * 0.3 * 0.8 * 0.2
    assert_close(vis.images, torch.full((1, 3, 4, 4), sig(p1)))
    assert_close(vis.history, torch.tensor([[-0.09]]))


class _Images:
    """A readout that only has images (what the penalties read)."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images


IMG = torch.tensor([[[0.0, 1.0], [0.5, 0.25]]]).expand(3, 2, 2).unsqueeze(0).clone()  # (1, 3, 2, 2), grey levels


@pytest.mark.parametrize(
    ("penalty", "value"),
    [
        (O.l1(), (0.5 + 0.5 + 0.0 + 0.25) / 4),
        (O.l2(), (0.25 + 0.25 + 0.0 + 0.0625) / 4),
        (O.l1(0.0), (0.0 + 1.0 + 0.5 + 0.25) / 4),
        # rows: |0.5 - 0|, |0.25 - 1| -> mean 0.625; columns: |1 - 0|, |0.25 - 0.5| -> mean 0.625
        (O.total_variation(), 1.25),
    ],
    ids=["l1", "l2", "l1-constant0", "tv"],
)
def test_penalty_values_by_hand(penalty: O.Objective, value: float) -> None:
    assert_close(penalty(_Images(IMG)), torch.tensor([value]))  # type: ignore[arg-type]


def test_blur_penalty_value_and_gradient_by_hand() -> None:
    # 3x3 box blur with replicated borders: every pixel of a 2x2 image averages the same 9 values
    # (4 x [0, 0] corner, ...): b = (4*0 + 2*1 + 2*0.5 + 1*0.25) / 9 for pixel (0, 0), etc.
    x = IMG.clone().requires_grad_(True)
    v = O.blur()(_Images(x))  # type: ignore[arg-type]
    a, b_, c, d = 0.0, 1.0, 0.5, 0.25
    blurred = torch.tensor(
        [[4 * a + 2 * b_ + 2 * c + d, 4 * b_ + 2 * a + 2 * d + c], [4 * c + 2 * a + 2 * d + b_, 4 * d + 2 * b_ + 2 * c + a]]
    ) / 9
    diff = IMG[0, 0] - blurred
    assert_close(v, 0.5 * diff.pow(2).mean().view(1))
    (g,) = torch.autograd.grad(v.sum(), x)
    assert_close(g[0, 0], diff / 12)  # d/dx of 0.5 mean over 12 values, the blur held constant


def test_objectives_compose_linearly() -> None:
    r = _Images(IMG)
    combo = 2 * O.l1() - O.l2() / 4 + 1
    assert_close(combo(r), 2 * O.l1()(r) - O.l2()(r) / 4 + 1)  # type: ignore[arg-type]
    assert combo.name == "2 * l1(0.5) - 0.25 * l2(0.5) + 1"


@pytest.mark.parametrize("kind", ["pixel", "fourier", "maco"])
def test_every_parametrisation_starts_exactly_at_the_init_image(kind: str) -> None:
    init = torch.rand(2, 3, 12, 10, generator=torch.Generator().manual_seed(0)) * 0.9 + 0.05
    p = make_param(kind, 2, (12, 10), [torch.Generator().manual_seed(i) for i in range(2)], torch.device("cpu"), torch.float64, init.double())
    assert_close(p.image(), init.double(), atol=1e-9, rtol=0)


def test_fourier_colour_matrix_is_lucids() -> None:
    svd = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=torch.float64)
    assert_close(COLOR_CORRELATION, svd / max(float(svd[:, j].norm()) for j in range(3)))
