"""The three ReLU rules on seed 000's worked example, as literals."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from saliency_widget import InputError, MethodError, relu_backward
from saliency_widget.engine import RULES

X = torch.tensor([[1.0, -2.0], [-4.0, 5.0]])
R = torch.tensor([[-2.0, -2.0], [4.0, 8.0]])


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("gradient", [[-2.0, 0.0], [0.0, 8.0]]),
        ("deconvnet", [[0.0, 0.0], [4.0, 8.0]]),
        ("guided_backprop", [[0.0, 0.0], [0.0, 8.0]]),
    ],
)
def test_seed_000_worked_example(rule: str, expected: list[list[float]]) -> None:
    assert_close(relu_backward(X, R, rule), torch.tensor(expected))


def test_forward_output_of_seed_000() -> None:
    assert_close(torch.relu(X), torch.tensor([[1.0, 0.0], [0.0, 5.0]]))


@pytest.mark.parametrize("rule", list(RULES))
def test_rule_at_zero_input_passes_nothing_forward_masked(rule: str) -> None:
    # x == 0 is "not positive": gradient and guided pass nothing there (as torch's relu backward).
    x = torch.zeros(3)
    r = torch.tensor([1.0, -1.0, 2.0])
    out = relu_backward(x, r, rule)
    expected = {"gradient": [0.0, 0.0, 0.0], "deconvnet": [1.0, 0.0, 2.0], "guided_backprop": [0.0, 0.0, 0.0]}[rule]
    assert_close(out, torch.tensor(expected))


def test_gradient_rule_equals_autograd_relu_backward() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(50, generator=gen, dtype=torch.float64, requires_grad=True)
    r = torch.randn(50, generator=gen, dtype=torch.float64)
    (g,) = torch.autograd.grad(torch.relu(x), x, r)
    assert_close(relu_backward(x.detach(), r, "gradient"), g, rtol=0, atol=0)


def test_unknown_rule_lists_choices() -> None:
    with pytest.raises(MethodError, match="'gradient', 'deconvnet', 'guided_backprop'"):
        relu_backward(X, R, "lrp")


def test_shape_mismatch_is_clear() -> None:
    with pytest.raises(InputError, match=r"\(2, 2\).*\(4,\)"):
        relu_backward(X, R.flatten(), "gradient")
