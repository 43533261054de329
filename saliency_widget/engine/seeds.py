"""Backward seeds: where a backward pass starts, and with which values.

A map is ``torch.autograd.grad(output, inputs, seed)``: the seed picks what is explained.
For a class map it is one-hot on the target logit; for a Zeiler-Fergus projection it is
zero everywhere in a layer's output except the chosen activation, which keeps its value.
"""

from __future__ import annotations

import torch

__all__ = ["activation_seed", "argmax_positions", "logit_seed"]


def logit_seed(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """One-hot seed on each sample's target logit.

    Parameters
    ----------
    logits
        ``(N, K)`` model output.
    targets
        ``(N,)`` class indices.

    Returns
    -------
    torch.Tensor
        ``(N, K)``, like ``logits``: 1 at ``[i, targets[i]]``, 0 elsewhere.
    """
    seed = torch.zeros_like(logits)
    seed.scatter_(1, targets.view(-1, 1).to(seed.device), 1.0)
    return seed


def argmax_positions(maps: torch.Tensor) -> torch.Tensor:
    """``(N, H, W)`` -> ``(N, 2)`` long tensor of (y, x) of each map's maximum."""
    n, _, w = maps.shape
    flat = maps.reshape(n, -1).argmax(dim=1)
    return torch.stack([flat // w, flat % w], dim=1)


def activation_seed(act: torch.Tensor, channel: int | torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
    """Zero everywhere except the chosen activation, which keeps its forward value.

    Parameters
    ----------
    act
        Layer output, ``(N, C, H, W)`` or ``(N, C)``.
    channel
        One channel for all samples, or an ``(N,)`` tensor with one channel per sample.
    pos
        ``(N, 2)`` (y, x) per sample, or None for each sample's strongest activation of
        ``channel``; ignored for ``(N, C)`` outputs.

    Returns
    -------
    torch.Tensor
        Same shape as ``act``.
    """
    seed = torch.zeros_like(act)
    n = act.shape[0]
    idx = torch.arange(n, device=act.device)
    if isinstance(channel, torch.Tensor):
        channel = channel.to(act.device)
    if act.dim() == 2:
        seed[idx, channel] = act[idx, channel]
        return seed
    if pos is None:
        pos = argmax_positions(act[idx, channel])
    pos = pos.to(act.device)
    seed[idx, channel, pos[:, 0], pos[:, 1]] = act[idx, channel, pos[:, 0], pos[:, 1]]
    return seed
