"""LayerKey: the one reader and writer of ``"name"`` / ``"name#call"`` layer keys."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import saliency_widget as sw
from saliency_widget import LayerError
from saliency_widget.engine import LayerKey
from saliency_widget.engine.checks import check_layer_key


@pytest.mark.parametrize(
    ("text", "call", "expected"),
    [
        ("features.3", 0, ("features.3", 0)),
        ("layer1.0.relu#1", 0, ("layer1.0.relu", 1)),
        ("layer1.0.relu#1", 1, ("layer1.0.relu", 1)),
        ("layer1.0.relu", 2, ("layer1.0.relu", 2)),
        ("a#b", 0, ("a#b", 0)),  # not a call suffix: part of the name
        ("a#", 0, ("a#", 0)),
        ("a#1#2", 0, ("a#1", 2)),  # only the last suffix is the call
        ("relu#0", 0, ("relu", 0)),
        ("", 0, ("", 0)),  # the model itself, as named_modules() names it
    ],
)
def test_parse(text: str, call: int, expected: tuple[str, int]) -> None:
    key = LayerKey.parse(text, call)
    assert (key.name, key.call) == expected


@pytest.mark.parametrize(
    ("key", "text"),
    [
        (LayerKey("features.3"), "features.3"),
        (LayerKey("features.3", 0), "features.3"),
        (LayerKey("layer1.0.relu", 1), "layer1.0.relu#1"),
        (LayerKey("layer2.1.relu", 12), "layer2.1.relu#12"),
    ],
)
def test_str_and_round_trip(key: LayerKey, text: str) -> None:
    assert str(key) == text
    assert LayerKey.parse(text) == key
    assert LayerKey.parse(key) is key


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (("layer1.0.relu#1", 2), r"names call 1 but call=2"),
        (("relu", -1), r"call index must be an int >= 0, got -1"),
        (("relu", True), r"call index must be an int >= 0, got True"),
        (("relu", 1.0), r"call index must be an int >= 0, got 1.0"),
        ((3, 0), r"must be a str.*got int 3"),
        ((None, 0), r"must be a str.*got NoneType"),
    ],
)
def test_parse_errors(args: tuple[object, object], pattern: str) -> None:
    with pytest.raises(LayerError, match=pattern):
        LayerKey.parse(*args)  # type: ignore[arg-type]


def test_keys_order_and_hash_by_name_then_call() -> None:
    keys = [LayerKey("b"), LayerKey("a", 1), LayerKey("a")]
    assert sorted(keys) == [LayerKey("a"), LayerKey("a", 1), LayerKey("b")]
    assert {LayerKey("a", 0): 1}[LayerKey.parse("a#0")] == 1


class Twice(nn.Module):
    """One ReLU module run twice: its executions are ``relu`` and ``relu#1``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.relu(self.relu(self.conv(x)) - 0.5).mean((2, 3)))


@pytest.fixture
def explainer() -> sw.Explainer:
    torch.manual_seed(0)
    return sw.Explainer(Twice().eval(), torch.randn(2, 1, 5, 5))


def test_layer_info_and_record_keys(explainer: sw.Explainer) -> None:
    infos = explainer.layers
    assert [i.key for i in infos] == ["conv", "relu", "relu#1", "fc"]
    assert [i.layer_key for i in infos] == [LayerKey("conv"), LayerKey("relu"), LayerKey("relu", 1), LayerKey("fc")]
    rec = explainer.record("relu#1")
    assert (rec.key, rec.layer_key) == ("relu#1", LayerKey("relu", 1))
    assert explainer.record("relu", 1) is rec
    assert explainer.record(LayerKey("relu", 1)) is rec


@pytest.mark.parametrize("layer", ["relu#1", LayerKey("relu", 1)])
def test_every_entry_point_reads_keys(explainer: sw.Explainer, layer: str | LayerKey) -> None:
    expected = explainer.activation("relu", call=1)
    torch.testing.assert_close(explainer.activation(layer), expected, rtol=0, atol=0)
    p = explainer.project(layer, 1)  # each sample's strongest activation of filter 1
    assert bool(p.any())
    one_shot = sw.project(explainer.model, explainer.inputs, layer, 1)
    torch.testing.assert_close(one_shot, p, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("layer", "call", "pattern"),
    [
        (1, 0, r"unknown layer 1.*'conv'"),
        ("nope#1", 0, r"unknown layer 'nope'.*'conv'"),
        ("relu#1", 2, r"names call 1 but call=2"),
    ],
)
def test_check_layer_key_errors(layer: object, call: int, pattern: str) -> None:
    with pytest.raises(LayerError, match=pattern):
        check_layer_key(Twice(), layer, call)


def test_record_of_a_call_that_did_not_run(explainer: sw.Explainer) -> None:
    with pytest.raises(LayerError, match=r"layer 'relu' ran 2 time\(s\); call must be one of \[0, 1\], got 2"):
        explainer.record("relu#2")
