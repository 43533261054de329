"""The method registry and the option checks of every method beyond the three ReLU rules."""

from __future__ import annotations

import pytest
import torch
import torchvision

import saliency_widget as sw
from saliency_widget import InputError, MethodError
from tests.helpers import seeded_randn

NEW = ["gradcam", "guided_gradcam", "gradcampp", "xgradcam", "layercam", "eigencam", "scorecam", "smoothgrad", "integrated_gradients", "input_x_gradient", "occlusion", "lrp"]


def test_registry_lists_every_method_once() -> None:
    names = sw.available_methods()
    assert names[:3] == ["gradient", "deconvnet", "guided_backprop"]
    assert sorted(names[3:]) == sorted(NEW) and len(set(names)) == len(names)


@pytest.mark.parametrize(
    ("method", "options", "pattern"),
    [
        ("smoothgrad", {"n": 0}, r"n must be a positive int"),
        ("smoothgrad", {"noise": -1.0}, r"noise"),
        ("smoothgrad", {"base": "gradcam"}, r"unknown ReLU rule 'gradcam'"),
        ("smoothgrad", {"sigma": 1.0}, r"unknown option.*sigma"),
        ("integrated_gradients", {"steps": 0}, r"steps must be a positive int"),
        ("integrated_gradients", {"scheme": "simpson"}, r"simpson"),
        ("integrated_gradients", {"baseline": torch.zeros(5)}, r"does not broadcast"),
        ("occlusion", {"window": 100}, r"larger than the image"),
        ("occlusion", {"stride": 0}, r"stride"),
        ("occlusion", {"output": "loss"}, r"'probability', 'logit' or 'activation'"),
        ("occlusion", {"output": "activation"}, r"needs layer"),
        ("gradcam", {"layer": "fc"}, r"spatial layer"),
        ("gradcam", {"layer": "nope"}, r"unknown layer 'nope'"),
        ("layercam", {"layer": "fc"}, r"LayerCAM needs a spatial layer"),
        ("eigencam", {"layer": "nope"}, r"unknown layer 'nope'"),
        ("scorecam", {"batch_size": 0}, r"batch_size must be a positive int"),
        ("gradcampp", {"batch_size": 4}, r"unknown option.*batch_size"),
        ("input_x_gradient", {"n": 3}, r"unknown option"),
    ],
)
def test_bad_options(method: str, options: dict[str, object], pattern: str) -> None:
    m = torchvision.models.resnet18(weights=None, num_classes=4).eval()
    with pytest.raises((InputError, MethodError, sw.LayerError), match=pattern):
        sw.saliency(m, seeded_randn(1, 3, 32, 32, seed=0), target=0, method=method, **options)
