"""torch.compile: explained through the original module (exact rules), or refused loudly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import saliency_widget as sw
from saliency_widget.engine.compiled import unwrap_compiled
from saliency_widget.errors import ModelError
from tests.helpers import assert_unchanged, snapshot, swap_relus

X = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(3))


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4),
    ).eval()


@pytest.fixture(scope="module")
def compiled_pair() -> tuple[nn.Module, nn.Module]:
    net = _net()
    compiled = torch.compile(net, backend="eager")
    with torch.no_grad():
        compiled(X)  # as a user would have: the compiled graph exists and is cached
    return net, compiled


@pytest.mark.parametrize("method", ["gradient", "deconvnet", "guided_backprop"])
def test_compiled_model_maps_are_bit_identical_to_the_eager_model(compiled_pair: tuple[nn.Module, nn.Module], method: str) -> None:
    net, compiled = compiled_pair
    before = snapshot(net)
    got = sw.saliency(compiled, X, target=[1, 3], method=method)
    ref = sw.saliency(net, X, target=[1, 3], method=method)
    assert torch.equal(got, ref)
    assert_unchanged(net, before)


@pytest.mark.parametrize("method", ["deconvnet", "guided_backprop"])
def test_compiled_model_gets_the_rule_not_the_plain_gradient(compiled_pair: tuple[nn.Module, nn.Module], method: str) -> None:
    net, compiled = compiled_pair
    x = X.clone().requires_grad_(True)
    out = swap_relus(net, method)(x)
    (ref,) = torch.autograd.grad(out[torch.arange(2), torch.tensor([1, 3])].sum(), x)
    got = sw.saliency(compiled, X, target=[1, 3], method=method)
    torch.testing.assert_close(got, ref)
    assert not torch.allclose(got, sw.saliency(compiled, X, target=[1, 3], method="gradient"))


def test_compiled_model_layers_and_projection_use_the_original_names(compiled_pair: tuple[nn.Module, nn.Module]) -> None:
    net, compiled = compiled_pair
    assert [i.key for i in sw.layers(compiled, X)] == [i.key for i in sw.layers(net, X)]
    assert torch.equal(sw.project(compiled, X, "3", channel=2), sw.project(net, X, "3", channel=2))


def test_unwrap_returns_the_original_module(compiled_pair: tuple[nn.Module, nn.Module]) -> None:
    net, compiled = compiled_pair
    assert unwrap_compiled(compiled) is net
    assert unwrap_compiled(net) is net


class CompiledForward(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = _net()

    @torch.compile(backend="eager")
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _compiled_submodule() -> nn.Module:
    net = _net()
    net[3] = torch.compile(net[3], backend="eager")
    return net


def _compiled_in_place() -> nn.Module:
    net = _net()
    net.compile(backend="eager")
    return net


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (_compiled_submodule, r"submodule '3' is torch.compile'd.*3._orig_mod"),
        (_compiled_in_place, r"the model \(Sequential\) was compiled in place with .compile\(\)"),
        (CompiledForward, r"the model \(CompiledForward\) has a torch.compile'd forward"),
    ],
)
@pytest.mark.parametrize("method", ["gradient", "guided_backprop"])
def test_compilation_that_cannot_be_unwrapped_is_refused(make: type, pattern: str, method: str) -> None:
    with pytest.raises(ModelError, match=pattern):
        sw.saliency(make(), X, method=method)
