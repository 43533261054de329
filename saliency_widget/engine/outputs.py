"""One reader for what a classifier returns: the logits ``(N, K)``.

Models return their class scores in different containers: a plain tensor (torchvision,
timm), an object with ``.logits`` (Hugging Face ``ImageClassifierOutput``), a dict with
``"logits"``, or a tuple whose first element is the logits (``return_dict=False``,
auxiliary-head models). Every caller of ``model(...)`` in the package reads the scores
through :func:`logits_of`, so all methods accept the same models and refuse the same ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..errors import ModelError

__all__ = ["logits_of"]


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return type(value).__name__


def logits_of(output: Any) -> torch.Tensor:
    """The class scores in a model's output, as a tensor of shape ``(N, K)``.

    Parameters
    ----------
    output
        What ``model(x)`` returned: a tensor ``(N, K)``; an object with a ``logits``
        attribute (Hugging Face ``ModelOutput``); a mapping with a ``"logits"`` key; or a
        tuple / list whose first element is the logits.

    Returns
    -------
    torch.Tensor
        The logits ``(N, K)`` themselves (not a copy: gradients flow through them).

    Raises
    ------
    ModelError
        If no ``(N, K)`` tensor is found where one of those forms puts it.
    """
    found: Any = output
    where = ""
    if isinstance(output, torch.Tensor):
        found = output
    elif isinstance(output, Mapping) and "logits" in output:
        # HF ModelOutput is an OrderedDict: its "logits" key and attribute are the same tensor
        found, where = output["logits"], f" (its 'logits' entry is {_describe(output['logits'])})"
    elif not isinstance(output, Mapping) and hasattr(output, "logits"):
        found, where = output.logits, f" (its .logits is {_describe(output.logits)})"
    elif isinstance(output, (tuple, list)) and len(output) > 0:
        found, where = output[0], f" (its first element is {_describe(output[0])})"
    if isinstance(found, torch.Tensor) and found.dim() == 2:
        return found
    raise ModelError(
        f"the model must return logits of shape (N, K); it returned {_describe(output)}{where}. "
        "Wrap it so that forward returns the class scores (a tensor, an object with .logits, "
        "a dict with 'logits' or a tuple whose first element is the logits are read automatically)"
    )
