"""Faithfulness of maps from a randomised model: the sanity check told by a second metric.

Adebayo et al. (2018) randomise a network from the top layer down and ask whether a map
changes. :func:`faithfulness_vs_randomised` asks a sharper question with the deletion /
insertion curves: are the maps of the randomised copy still *faithful to the trained model*?
A method whose randomised maps score like its trained maps does not depend on the weights it
claims to explain.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..engine.api import saliency
from ..engine.checks import check_model, eval_mode, prepare_inputs, resolve_targets
from ..engine.outputs import logits_of
from ..errors import InputError
from .faithfulness import deletion_insertion
from .faithresult import FaithfulnessResult
from .sanity import parameterised_layers, randomise_module

__all__ = ["RANDOMISED_SUFFIX", "faithfulness_vs_randomised", "randomised_copy"]

RANDOMISED_SUFFIX = " (top layers randomised)"
"""Appended to a method's name for the maps of the randomised copy (``top=None``: " (all layers randomised)")."""


def randomised_copy(model: nn.Module, top: int | None = 2, seed: int = 0) -> nn.Module:
    """A deep copy of ``model`` with its ``top`` highest parameterised layers re-initialised.

    The layers are those of the cascading sanity check
    (:func:`saliency_widget.analysis.sanity.parameterised_layers`), randomised from the top
    down with a generator seeded by ``seed``; ``top=None`` randomises all of them. The model
    itself is never modified.
    """
    model = check_model(model)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be an int >= 0, got {seed!r}")
    layers = parameterised_layers(model)
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= len(layers)):
        raise InputError(f"top must be None or an int in 1..{len(layers)} (the model's parameterised layers), got {top!r}")
    rand = copy.deepcopy(model)
    mods = dict(rand.named_modules())
    gen = torch.Generator().manual_seed(seed)
    for name in list(reversed(layers))[: len(layers) if top is None else top]:
        randomise_module(mods[name], gen)
    return rand


def faithfulness_vs_randomised(
    model: nn.Module,
    inputs: torch.Tensor,
    methods: Sequence[str],
    target: Any = None,
    *,
    top: int | None = 2,
    seed: int = 0,
    steps: int = 16,
    batch_size: int | None = None,
    progress: Callable[[int, int], bool | None] | None = None,
) -> FaithfulnessResult:
    """Deletion / insertion AUCs of each method's maps from the trained and from a randomised model.

    Both sets of maps explain the trained model's ``target`` (default: its predicted class)
    and are scored on the *trained* model; the randomised copy's maps are named
    ``method + RANDOMISED_SUFFIX`` (or " (all layers randomised)" for ``top=None``).

    Parameters
    ----------
    model
        The trained classifier (never modified).
    inputs
        ``(N, C, H, W)`` preprocessed images.
    methods
        Registered method names.
    target
        None (predicted class), an int or N ints.
    top, seed
        As in :func:`randomised_copy`.
    steps, batch_size, progress
        As in :func:`~saliency_widget.analysis.deletion_insertion` (deletion to zeros, insertion
        from the blurred image, MoRF, with the random-order reference).

    Returns
    -------
    FaithfulnessResult
        Methods: the trained maps first, then the randomised ones.
    """
    model = check_model(model)
    if isinstance(methods, str) or not methods:
        raise InputError(f"methods must be a non-empty sequence of method names, got {methods!r}" + (f"; use [{methods!r}]" if isinstance(methods, str) else ""))
    x, _, _ = prepare_inputs(inputs, model)
    with torch.no_grad(), eval_mode(model):
        tgt = resolve_targets(target, logits_of(model(x)))
    rand = randomised_copy(model, top, seed)
    suffix = RANDOMISED_SUFFIX if top is not None else " (all layers randomised)"
    maps = {m: saliency(model, x, tgt, m).detach() for m in methods}
    maps.update({m + suffix: saliency(rand, x, tgt, m).detach() for m in methods})
    return deletion_insertion(model, x, maps=maps, target=tgt, steps=steps, batch_size=batch_size, progress=progress)
