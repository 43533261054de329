"""The headless explorer on one builder of each torchvision architecture (the smallest): every method renders or says why.

The other builders of an architecture run the same code with other widths and depths; their
engine checks are in test_torchvision_zoo.py. MaxViT's builder takes 224 x 224 inputs at least
(7 x 7 partitions in every stage), too slow for fourteen methods here: its class runs in a tiny config.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from torch import nn

from saliency_widget.engine import available_methods
from tests.zoo.checks import Case, Size
from tests.zoo.harness import Family, built_family, check_widget
from tests.zoo.torchvision_cases import CASES

pytest.importorskip("pytorch_grad_cam")

REPRESENTATIVES = [
    "alexnet", "convnext_tiny", "densenet121", "efficientnet_b0", "efficientnet_v2_s", "googlenet", "inception_v3",
    "mnasnet0_5", "mobilenet_v2", "mobilenet_v3_small", "regnet_x_400mf", "regnet_y_400mf", "resnet18", "resnext50_32x4d",
    "shufflenet_v2_x0_5", "squeezenet1_1", "swin_t", "swin_v2_t", "vgg11", "vit_b_32",
]  # fmt: skip


def _tiny_maxvit(size: Size) -> nn.Module:
    from torchvision.models.maxvit import MaxVit

    return MaxVit(
        input_size=size, stem_channels=16, block_channels=[16, 24], block_layers=[1, 1], head_dim=8, partition_size=4,
        stochastic_depth_prob=0.0, num_classes=10,
    )


WIDGET_CASES = [c for c in CASES if c.name in REPRESENTATIVES] + [Case("maxvit (tiny MaxVit)", _tiny_maxvit, (64, 64), (96, 96), fixed_size=True)]


@pytest.fixture(scope="module", params=[c.param() for c in WIDGET_CASES])
def family(request: pytest.FixtureRequest) -> Iterator[Family]:
    yield from built_family(request.param, "torchvision")


@pytest.mark.parametrize("method", available_methods())
def test_widget_renders_or_says_why(family: Family, method: str, request: pytest.FixtureRequest) -> None:
    check_widget(family, method, request)
