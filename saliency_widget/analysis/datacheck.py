"""The check of a dataset's batches against the model, before the model sees them.

A scan over a dataset (top-k, mining) meets images the user prepared elsewhere: a grey-scale
set for an RGB model, uint8 pixels, a NaN from a bad normalisation. Without a check these
surface as a raw convolution ``RuntimeError`` (or, for NaN, as silently wrong winners); here
they are one :class:`~saliency_widget.errors.InputError` line naming the data's shape, the
image and what the model expects.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..engine.checks import prepare_inputs
from ..errors import InputError, ModelError

__all__ = ["check_images"]


def check_images(model: nn.Module, x: torch.Tensor, first: int, expect: tuple[int, ...] | None,
                 name: Callable[[int], str] | None = None) -> tuple[int, ...]:
    """Refuse a batch of the data that the model cannot take, in one line.

    Parameters
    ----------
    model
        The scanned model.
    x
        ``(B, C, H, W)`` images ``first .. first + B - 1`` of the data.
    first
        Index of the batch's first image in the data.
    expect
        ``(C, H, W)`` of the images before this batch, or None for the first batch: then the
        batch's first image is checked against the model (dimensions, dtype, channel count of
        its first convolution). Every batch is checked for its image size (one size per scan:
        the winners' positions and projections share one grid), a floating dtype and
        non-finite values.
    name
        Optional: the data's name of image ``i`` (a file's relative path), for the message.

    Returns
    -------
    tuple of int
        ``(C, H, W)`` of the batch's images (``expect`` for the next batch).

    Raises
    ------
    InputError
        The images are not floating point, do not have the channel count the model expects,
        differ in size from the images before them, or an image holds NaN or Inf values.
    """
    where = f"data images {first}..{first + x.shape[0] - 1} (batch of shape {tuple(x.shape)})"
    if not x.is_floating_point():
        raise InputError(f"{where} have dtype {x.dtype}; the model takes floating-point images: apply its preprocessing "
                         "(e.g. ToTensor() and Normalize) in the dataset's transform")
    shape = tuple(int(v) for v in x.shape[1:])
    if expect is not None and shape != expect:
        raise InputError(f"{where} are {shape[-2]}x{shape[-1]} with {shape[0]} channel(s), the images before them "
                         f"{expect[-2]}x{expect[-1]} with {expect[0]}; a scan needs one image size: resize in the data's transform")
    if expect is None:
        try:
            prepare_inputs(x[:1].detach(), model)
        except InputError as err:
            raise InputError(f"{where} do not fit the model: {str(err).replace('inputs have', 'they have')}") from None
        except ModelError:  # about the model, not the data (e.g. half precision on the CPU): the scan decides
            pass
    finite = torch.isfinite(x.detach()).flatten(1).all(1)
    if not bool(finite.all()):
        i = first + int((~finite).nonzero()[0, 0])
        label = f" ({name(i)!r})" if name is not None else ""
        raise InputError(f"data image {i}{label} holds NaN or Inf values (in a batch of shape {tuple(x.shape)}); "
                         "its activations would be meaningless: check how it is loaded and normalised")
    return shape
