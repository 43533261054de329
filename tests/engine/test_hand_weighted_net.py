"""Gradient, DeconvNet, Guided Backprop maps and projections on a hand-weighted net, as hand-computed literals.

Network (``tests.nets.HandWeightedNet``, no biases; input ``tests.nets.HAND_X``)::

    x (1,1,3,3) -> conv 2x2 (2 filters) -> ReLU -> max-pool 2x2 -> flatten (2)
      -> linear V (2x2) -> ReLU -> linear U (2x2) -> logits

x = [[1, 2, 0], [-1, 3, 1], [0, -2, 2]];  w0 = [[1, 0], [0, 1]];  w1 = [[-1, 1], [1, -1]]
conv:  ch0 = [[4, 3], [-3, 5]]   ch1 = [[-3, 0], [6, -6]]
pool switches: ch0 -> (1,1) value 5;  ch1 -> (1,0) value 6;  p = [5, 6]
V = [[1, -1], [0, 1]]: V p = [-1, 6] -> ReLU -> h = [0, 6]
U = [[2, 1], [-1, 2]]: logits = [6, 12]

Target 0: dl0/dh = [2, 1]; the hidden ReLU has forward input [-1, 6]:
  gradient  R_h = [0, 1]  -> dp = V^T R_h = [0, 1]
  deconvnet R_h = [2, 1]  -> dp = [2, -1]
  guided    R_h = [0, 1]  -> dp = [0, 1]
Conv ReLU at the switches (forward inputs 5 and 6, both positive):
  gradient  r0 = 0, r1 = 1 ;  deconvnet r0 = 2, r1 = relu(-1) = 0 ;  guided r0 = 0, r1 = 1
Transposed conv (w placed at the switch position, scaled by r):
  r1 * w1 at (1,0): x[1,0] -= r1, x[1,1] += r1, x[2,0] += r1, x[2,1] -= r1
  r0 * w0 at (1,1): x[1,1] += r0, x[2,2] += r0
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import saliency_widget as sw
from tests.nets import HAND_X, HandWeightedNet


@pytest.fixture(params=[torch.float32, torch.float64], ids=["f32", "f64"])
def net_and_x(request: pytest.FixtureRequest) -> tuple[nn.Module, torch.Tensor]:
    return HandWeightedNet().to(request.param), HAND_X.to(request.param)


def test_forward_values(net_and_x: tuple[nn.Module, torch.Tensor]) -> None:
    net, x = net_and_x
    assert_close(net(x), torch.tensor([[6.0, 12.0]], dtype=x.dtype))
    ex = sw.Explainer(net, x)
    assert_close(ex.activation("conv"), torch.tensor([[[[4.0, 3.0], [-3.0, 5.0]], [[-3.0, 0.0], [6.0, -6.0]]]], dtype=x.dtype))


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("gradient", [[0.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [1.0, -1.0, 0.0]]),
        ("deconvnet", [[0.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]]),
        ("guided_backprop", [[0.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [1.0, -1.0, 0.0]]),
    ],
)
def test_maps_for_target_0(net_and_x: tuple[nn.Module, torch.Tensor], method: str, expected: list[list[float]]) -> None:
    net, x = net_and_x
    out = sw.saliency(net, x, target=0, method=method)
    assert out.dtype == x.dtype and out.shape == x.shape
    assert_close(out, torch.tensor([[expected]], dtype=x.dtype))


# Target 1 (also the prediction): dl1/dh = [-1, 2]; hidden ReLU input [-1, 6]
#   gradient R_h = [0, 2] -> dp = [0, 2];  deconvnet R_h = [0, 2] -> dp = [0, 2];  guided the same
#   conv ReLU: r0 = 0, r1 = 2 for all three -> 2 * w1 at (1,0)
@pytest.mark.parametrize("method", ["gradient", "deconvnet", "guided_backprop"])
@pytest.mark.parametrize("target", [None, 1, [1], torch.tensor([1])], ids=["pred", "int", "list", "tensor"])
def test_maps_for_target_1(net_and_x: tuple[nn.Module, torch.Tensor], method: str, target: object) -> None:
    net, x = net_and_x
    expected = torch.tensor([[[[0.0, 0.0, 0.0], [-2.0, 2.0, 0.0], [2.0, -2.0, 0.0]]]], dtype=x.dtype)
    assert_close(sw.saliency(net, x, target=target, method=method), expected)


@pytest.mark.parametrize(
    ("layer", "channel", "position", "method", "expected"),
    [
        # strongest of ch0 after ReLU is 5 at (1,1): 5 * w0 placed at (1,1)
        ("relu", 0, None, "deconvnet", [[0, 0, 0], [0, 5, 0], [0, 0, 5]]),
        # ch1 strongest is 6 at (1,0): 6 * w1 placed at (1,0)
        ("relu", 1, None, "deconvnet", [[0, 0, 0], [-6, 6, 0], [6, -6, 0]]),
        # a chosen position: ch0 (0,1) has value 3
        ("relu", 0, (0, 1), "deconvnet", [[0, 3, 0], [0, 0, 3], [0, 0, 0]]),
        # ch0 (1,0) is 0 after ReLU: nothing to project
        ("relu", 0, (1, 0), "deconvnet", [[0, 0, 0], [0, 0, 0], [0, 0, 0]]),
        # from the pooled map: ch1's single value 6 goes back through the switch at (1,0)
        ("pool", 1, (0, 0), "deconvnet", [[0, 0, 0], [-6, 6, 0], [6, -6, 0]]),
        # from the conv output (before the ReLU): ch1 (0,0) = -3 projects with its sign
        ("conv", 1, (0, 0), "gradient", [[3, -3, 0], [-3, 3, 0], [0, 0, 0]]),
        # from the hidden fully connected unit 1 (value 6): dp = [0, 6] -> 6 * w1 at (1,0)
        ("relu2", 1, None, "deconvnet", [[0, 0, 0], [-6, 6, 0], [6, -6, 0]]),
        # hidden unit 1 with guided backprop: same path, all positive forward inputs
        ("relu2", 1, None, "guided_backprop", [[0, 0, 0], [-6, 6, 0], [6, -6, 0]]),
    ],
)
def test_projection_literals(
    net_and_x: tuple[nn.Module, torch.Tensor],
    layer: str,
    channel: int,
    position: tuple[int, int] | None,
    method: str,
    expected: list[list[int]],
) -> None:
    net, x = net_and_x
    want = torch.tensor([[expected]], dtype=x.dtype)
    assert_close(sw.project(net, x, layer, channel, position=position, method=method), want)
    assert_close(sw.Explainer(net, x).project(layer, channel, position=position, method=method), want)


def test_maxpool_goes_back_through_its_switches() -> None:
    pool = nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1, 1, bias=False))
    with torch.no_grad():
        pool[2].weight.fill_(1.0)
    x = torch.tensor([[[[0.5, 3.0], [2.0, -1.0]]]])
    # the max (3.0) sits at (0,1): only that pixel receives the signal
    assert_close(sw.saliency(pool, x, target=0), torch.tensor([[[[0.0, 1.0], [0.0, 0.0]]]]))


def test_layers_lists_forward_order() -> None:
    infos = sw.layers(HandWeightedNet(), HAND_X)
    assert [(i.name, i.call, i.shape, i.type) for i in infos] == [
        ("conv", 0, (2, 2, 2), "Conv2d"),
        ("relu", 0, (2, 2, 2), "ReLU"),
        ("pool", 0, (2, 1, 1), "MaxPool2d"),
        ("fc1", 0, (2,), "Linear"),
        ("relu2", 0, (2,), "ReLU"),
        ("fc2", 0, (2,), "Linear"),
    ]


def test_receptive_field_of_tiny_net() -> None:
    ex = sw.Explainer(HandWeightedNet(), HAND_X)
    assert ex.receptive_field("conv", 1, 0) == (1, 0, 3, 2)
    assert ex.receptive_field("pool", 0, 0) == (0, 0, 3, 3)
