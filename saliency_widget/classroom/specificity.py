"""How much a saliency map depends on the class asked about: one number per method.

A map that explains a decision should change when another class is asked about; a map that
mostly redraws the input's edges does not (Nie, Zhang & Patel 2018 showed that DeconvNet and
guided backprop reconstruct the image rather than explain the class). Pure engine code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..engine.session import Explainer
from ..errors import InputError

__all__ = ["class_correlation"]


def class_correlation(explainer: Explainer, classes: tuple[int, int], methods: Sequence[str], sample: int = 0) -> dict[str, float]:
    """Pearson correlation between the maps of two classes, per method.

    Parameters
    ----------
    explainer
        An :class:`~saliency_widget.engine.session.Explainer` over ``(N, C, H, W)`` inputs.
    classes
        Two different class indices ``(a, b)``.
    methods
        Registered method names.
    sample
        Which of the N inputs.

    Returns
    -------
    dict[str, float]
        ``{method: r}`` with ``r`` in [-1, 1]: the correlation of the ``(H * W)`` maps
        ``sum_c |map_c|`` for class ``a`` and class ``b``. Near 1: the map hardly depends on the
        class (it shows the input, not the evidence for a class); lower: class-specific.
    """
    a, b = classes
    if a == b:
        raise InputError(f"classes must be two different class indices, got {classes!r}")
    out: dict[str, float] = {}
    for m in methods:
        ma = explainer.saliency(a, m)[sample].abs().sum(0).flatten().double()
        mb = explainer.saliency(b, m)[sample].abs().sum(0).flatten().double()
        out[m] = float(torch.corrcoef(torch.stack([ma, mb]))[0, 1])
    return out
