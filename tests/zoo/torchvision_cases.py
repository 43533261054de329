"""Every torchvision classification builder, with random weights, at the smallest input it takes.

Sizes: ``(32, 48)`` checks and an ``(80, 112)`` twin for the stride-32 CNNs (H, W, their
grids and the channel counts all differ; the last grid is 1 x 2, or 2 x 3 at ``(64, 96)`` for
the models whose downsamplings floor); models with a minimum input (AlexNet 63, Inception
75, MaxViT's 7 x 7 partitions of every stage) or one input size fixed at construction (ViT's
``image_size``, MaxViT's ``input_size``) get their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torchvision
from torch import nn

from tests.zoo.checks import Case, Size

SMALL: Size = (32, 48)
TWIN: Size = (80, 112)
MID: Size = (64, 96)
MID_TWIN: Size = (96, 128)

# builders whose construction (random init of > 100 M parameters) or forward takes seconds here
SLOW = {
    "convnext_base", "convnext_large", "convnext_small", "efficientnet_v2_l", "inception_v3", "maxvit_t",
    "regnet_x_32gf", "regnet_y_128gf", "regnet_y_32gf", "resnext101_32x8d", "resnext101_64x4d",
    "swin_b", "swin_s", "swin_v2_b", "swin_v2_s", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn",
    "vgg19", "vgg19_bn", "vit_h_14", "vit_l_16", "vit_l_32", "wide_resnet101_2",
}  # fmt: skip

# known failures ({builder: {check: reason}}), applied as strict xfails: none left (SqueezeNet's twin check was one
# until the check followed unpadded strides: right grids that are not proportional to the input)
XFAIL: dict[str, dict[str, str]] = {}


def builder(name: str, **fixed: Any) -> Callable[[Size], nn.Module]:
    """``size -> torchvision.models.get_model(name, weights=None, ...)``."""

    def build(size: Size) -> nn.Module:
        kw = dict(fixed)
        if name.startswith("vit_"):
            kw["image_size"] = size[0]
        if name == "maxvit_t":
            kw["input_size"] = size
        m = torchvision.models.get_model(name, weights=None, **kw)
        head = getattr(getattr(m, "heads", None), "head", None)
        if isinstance(head, nn.Linear):
            # torchvision's ViT initialises its head to zero: every score (and gradient) would be 0
            nn.init.normal_(head.weight, std=0.02)
        return m

    return build


def _sizes(name: str) -> tuple[Size, Size]:
    if name.startswith(("convnext", "swin", "densenet")):
        return MID, MID_TWIN  # stride-2 downsamplings that floor: (32, 48) would end on a 1 x 1 grid
    if name == "alexnet":
        return (64, 96), (96, 128)
    if name == "inception_v3":
        return (128, 160), (176, 208)
    if name == "maxvit_t":
        return (224, 224), (448, 448)  # square only (grid partitions)
    if name.startswith("vit_"):
        patch = int(name.rsplit("_", 1)[1])
        return (2 * patch, 2 * patch), (3 * patch, 3 * patch)  # ViT: square inputs only
    return SMALL, TWIN


def case(name: str) -> Case:
    """The sweep's case for torchvision builder ``name``."""
    size, twin = _sizes(name)
    fixed: dict[str, Any] = {"init_weights": False} if name in ("googlenet", "inception_v3") else {}
    return Case(
        name, builder(name, **fixed), size, twin, xfail=XFAIL.get(name, {}), slow=name in SLOW,
        fixed_size=name.startswith("vit_") or name == "maxvit_t",
    )


CASES = [case(n) for n in torchvision.models.list_models(module=torchvision.models)]


# The headless explorer runs on one builder of each architecture (the smallest): the other builders of an
# architecture run the same code with other widths and depths. MaxViT's builder takes 224 x 224 inputs at
# least (7 x 7 partitions in every stage), too slow for every method: its class runs in a tiny config.
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
