"""Tiny networks for the feature-visualization tests: a 1x1 linear conv, NHWC and token layers."""

from __future__ import annotations

import torch
from torch import nn

from tests.nets import seeded

W = torch.tensor([[1.0, -2.0, 0.5], [0.0, 0.0, 0.0]])
"""Weights of :class:`LinearConv`: channel 0 = x_R - 2 x_G + 0.5 x_B, channel 1 = 0."""


class LinearConv(nn.Module):
    """One 1x1 convolution ``conv`` with weights :data:`W`, no bias, then global mean to 2 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(W.view(2, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean((2, 3))


class ChannelsLastNet(nn.Module):
    """Conv, then a channels-last linear layer ``fc`` (an NHWC output), back to NCHW, 3 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.fc = nn.Linear(4, 5)
        self.head = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(self.act(self.conv(x)).permute(0, 2, 3, 1))
        return self.head(y.mean((1, 2)))


class TokenNet(nn.Module):
    """Patch embedding (4 px), a class token, a token-wise linear layer ``mix``, class-token head."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 4, stride=4)
        self.cls = nn.Parameter(torch.randn(1, 1, 8))
        self.mix = nn.Linear(8, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.embed(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(t.shape[0], -1, -1), t], dim=1)
        t = self.mix(t)
        return self.head(t.mean(1))


def channels_last_net() -> ChannelsLastNet:
    """:class:`ChannelsLastNet`, seeded, eval mode."""
    return seeded(ChannelsLastNet, 3).eval()


def token_net() -> TokenNet:
    """:class:`TokenNet`, seeded, eval mode."""
    return seeded(TokenNet, 4).eval()
