"""Tiny networks shared by the tests: hand-weighted nets with known maps, small CNNs, odd models.

Random-weight nets are built by factories that seed their own RNG (:func:`seeded`), so a net
is the same whichever test, or import, runs first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from tests.helpers import RefReLU

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def seeded(make: Callable[[], ModuleT], seed: int = 0) -> ModuleT:
    """``make()`` with the global RNG seeded to ``seed``, restored afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


# ----------------------------------------------------------------------------- hand-weighted net


class HandWeightedNet(nn.Module):
    """conv 2x2 (2 filters) -> ReLU -> max-pool 2x2 -> linear V -> ReLU -> linear U, no biases.

    Every activation and map on :data:`HAND_X` is worked out by hand in
    ``tests/engine/test_hand_weighted_net.py``. Input (1, 1, 3, 3), logits (1, 2) = [6, 12].
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 2, bias=False)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(2, 2, bias=False)
        self.relu2 = nn.ReLU()
        self.fc2 = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]], [[[-1.0, 1.0], [1.0, -1.0]]]]))
            self.fc1.weight.copy_(torch.tensor([[1.0, -1.0], [0.0, 1.0]]))
            self.fc2.weight.copy_(torch.tensor([[2.0, 1.0], [-1.0, 2.0]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.conv(x))).flatten(1)
        return self.fc2(self.relu2(self.fc1(x)))


HAND_X = torch.tensor([[[[1.0, 2.0, 0.0], [-1.0, 3.0, 1.0], [0.0, -2.0, 2.0]]]])
"""The input of :class:`HandWeightedNet`, shape (1, 1, 3, 3)."""


# ----------------------------------------------------------------------------- small random CNNs


class SmallCNN(nn.Module):
    """Conv-ReLU-pool-conv-ReLU, global mean, 3 classes; 3-channel inputs of any size >= 2 px."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU()
        )
        self.fc = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean((2, 3)))


def small_cnn(seed: int = 0) -> SmallCNN:
    """:class:`SmallCNN` with weights drawn under ``seed``, in eval mode."""
    return seeded(SmallCNN, seed).eval()


class FiveClassCNN(nn.Module):
    """Conv-ReLU-pool, flatten, linear to 5 classes; inputs (N, 3, 8, 8) only."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))


def sequential_cnn(seed: int = 0) -> nn.Sequential:
    """Three conv-ReLU blocks (8, 12, 16 filters; two max-pools), 4 classes, in eval mode."""

    def make() -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 12, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(12, 16, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4),
        )  # fmt: skip

    return seeded(make, seed).eval()


# ----------------------------------------------------------------------------- odd models


class TrainModeBNDropout(nn.Module):
    """Conv-BatchNorm-ReLU-Dropout, 3 classes: differs between train and eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(F.relu(self.bn(self.conv(x)))).mean((2, 3)))


class NoReLU(nn.Module):
    """Conv-tanh, 3 classes, no ReLU at all; tanh as an ``nn.Tanh`` module or as ``torch.tanh``."""

    def __init__(self, functional: bool = False) -> None:
        super().__init__()
        self.functional = functional
        self.conv = nn.Conv2d(3, 2, 3)
        self.act = nn.Tanh()
        self.fc = nn.Linear(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.conv(x)) if self.functional else self.act(self.conv(x))
        return self.fc(h.mean((2, 3)))


class MLP(nn.Module):
    """No convolution at all: an MLP on flattened (N, 3, 8, 8) images, 3 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(3 * 8 * 8, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


class ReturnsTuple(SmallCNN):
    """Returns ``(dict, logits)``: a tuple is read when its first element is the logits, so this one is refused."""

    def forward(self, x: torch.Tensor) -> Any:  # type: ignore[override]
        return {"aux": 1}, super().forward(x)


class Returns4D(SmallCNN):
    """Returns the (N, 6, H/2, W/2) feature maps instead of logits."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class Returns1D(SmallCNN):
    """Returns one number per image, shape (N,), instead of logits."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).sum(1)


# ----------------------------------------------------------------------------- every ReLU form


class AllReLUForms(nn.Module):
    """Uses F.relu, F.relu(inplace), F.relu_, torch.relu, torch.relu_, Tensor.relu, Tensor.relu_ and a reused nn.ReLU.

    Nine ReLU calls per forward; 5 classes, inputs (N, 3, H, W) with H, W divisible by 4.
    Setting ``ref_rule`` makes every ReLU the explicit-mask :class:`tests.helpers.RefReLU`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, 3, padding=1)
        self.c2 = nn.Conv2d(6, 6, 3, padding=1)
        self.c3 = nn.Conv2d(6, 8, 3, padding=1)
        self.c4 = nn.Conv2d(8, 8, 3, padding=1)
        self.c5 = nn.Conv2d(8, 8, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.fc = nn.Linear(8, 5)
        self.ref_rule: str | None = None  # set only by a test's reference path

    def r(self, form: str, t: torch.Tensor) -> torch.Tensor:
        if self.ref_rule is not None:
            return RefReLU.apply(t, self.ref_rule)
        if form == "F.relu":
            return F.relu(t)
        if form == "F.relu_inplace":
            return F.relu(t, inplace=True)
        if form == "F.relu_":
            return F.relu_(t)
        if form == "torch.relu":
            return torch.relu(t)
        if form == "torch.relu_":
            return torch.relu_(t)
        if form == "Tensor.relu":
            return t.relu()
        if form == "Tensor.relu_ (result ignored)":
            t.relu_()  # the caller relies on the in-place change, not the return value
            return t
        if form == "nn.ReLU":
            return self.act(t)
        raise ValueError(form)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.r("F.relu", self.c1(x))
        x = self.r("torch.relu_", self.c2(x) + x)
        x = F.max_pool2d(x, 2)
        x = self.r("Tensor.relu", self.c3(x))
        x = self.r("nn.ReLU", self.c4(x))
        x = self.r("Tensor.relu_ (result ignored)", self.c5(x) - 0.1)
        x = self.r("nn.ReLU", self.c4(x) + x)
        x = self.r("F.relu_", self.c5(x))
        x = self.r("F.relu_inplace", self.c5(x) * 1.5)
        x = self.r("torch.relu", F.max_pool2d(x, 2))
        return self.fc(F.adaptive_max_pool2d(x, 1).flatten(1))


# ----------------------------------------------------------------------------- torchvision models, random weights


def resnet18_random_bn(seed: int = 11, num_classes: int = 10) -> nn.Module:
    """ResNet-18 (``weights=None``) in float64, eval mode, with random BatchNorm means and biases.

    Non-trivial BatchNorm statistics keep the BatchNorm layers from being the identity.
    """

    def make() -> nn.Module:
        m = torchvision.models.resnet18(weights=None, num_classes=num_classes).double().eval()
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                assert mod.running_mean is not None  # track_running_stats is on in torchvision's BatchNorm
                mod.running_mean.uniform_(-0.3, 0.3)
                mod.bias.data.uniform_(-0.2, 0.2)
        return m

    return seeded(make, seed)

