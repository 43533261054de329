"""Lucid's redirected ReLU gradient (featviz/redirect.py), value by value."""

from __future__ import annotations

import torch

from saliency_widget.featviz.redirect import REDIRECTED


def test_an_image_with_a_live_unit_gets_the_plain_relu_gradient() -> None:
    out = torch.tensor([[[0.0, 2.0, 0.0]], [[1.0, 0.0, 0.0]]])  # relu outputs, both images have a live unit
    grad = torch.tensor([[[-1.0, -2.0, 3.0]], [[4.0, -5.0, 6.0]]])
    expected = torch.tensor([[[0.0, -2.0, 0.0]], [[4.0, 0.0, 0.0]]])  # grad where out > 0
    torch.testing.assert_close(REDIRECTED.backward(grad, out), expected)


def test_an_image_whose_units_are_all_off_gets_the_signal_that_raises_them() -> None:
    # image 0: every unit off, so the rule passes the negative grads (they ask for a larger input) and
    # blocks the positive ones; image 1 has a live unit and keeps the plain gradient
    out = torch.tensor([[[0.0, 0.0, 0.0]], [[0.0, 3.0, 0.0]]])
    grad = torch.tensor([[[-1.0, 2.0, -3.0]], [[-4.0, -5.0, 6.0]]])
    expected = torch.tensor([[[-1.0, 0.0, -3.0]], [[0.0, -5.0, 0.0]]])
    torch.testing.assert_close(REDIRECTED.backward(grad, out), expected)


def test_a_live_unit_with_zero_gradient_counts_as_no_signal() -> None:
    # the plain gradient is zero everywhere (the live unit's grad is 0): redirected
    out = torch.tensor([[[2.0, 0.0]]])
    grad = torch.tensor([[[0.0, -7.0]]])
    torch.testing.assert_close(REDIRECTED.backward(grad, out), torch.tensor([[[0.0, -7.0]]]))
