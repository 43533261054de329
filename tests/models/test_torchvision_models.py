"""The torchvision helper (torchvision_model) offline: missing weights and failed downloads explained, cache used, bad arguments."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision

from saliency_widget.errors import InputError
from saliency_widget.models import torchvision_model
from saliency_widget.models.torchvision_models import weights_cache_path


@pytest.fixture()
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the torch hub cache at an empty folder for the test."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)  # undo any torch.hub.set_dir
    return tmp_path / "hub" / "checkpoints"


def test_torchvision_missing_weights_offline_is_explained(empty_hub: Path) -> None:
    with pytest.raises(InputError) as info:
        torchvision_model("squeezenet1_1", download=False)
    msg = str(info.value)
    assert str(empty_hub) in msg and "weights=None" in msg and "shapes_cnn()" in msg


def test_torchvision_failed_download_is_explained(empty_hub: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", no_network)
    with pytest.raises(InputError, match="could not be downloaded") as info:
        torchvision_model("squeezenet1_1")
    assert isinstance(info.value.__cause__, urllib.error.URLError)
    assert "torch hub cache" in str(info.value)


def test_torchvision_loads_from_cache_without_network(empty_hub: Path) -> None:
    weights = torchvision.models.SqueezeNet1_1_Weights.DEFAULT
    assert weights_cache_path(weights).parent == empty_hub
    torch.manual_seed(0)
    reference = torchvision.models.squeezenet1_1(weights=None)
    empty_hub.mkdir(parents=True)
    torch.save(reference.state_dict(), weights_cache_path(weights))
    loaded = torchvision_model("squeezenet1_1", "IMAGENET1K_V1", download=False)
    assert not loaded.training and loaded.saliency_weights is weights
    for (name, a), b in zip(reference.state_dict().items(), loaded.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)


@pytest.mark.parametrize(
    "name, weights, fragment",
    [
        ("resnet9000", "DEFAULT", "not a torchvision classification model"),
        ("squeezenet1_1", "IMAGENET9K", "IMAGENET1K_V1"),
        ("squeezenet1_1", torchvision.models.ResNet18_Weights.DEFAULT, "another model"),
    ],
)
def test_torchvision_bad_arguments(name: str, weights: object, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        torchvision_model(name, weights)  # type: ignore[arg-type]


def test_torchvision_random_weights_need_no_file() -> None:
    model = torchvision_model("squeezenet1_1", weights=None)
    assert not model.training
