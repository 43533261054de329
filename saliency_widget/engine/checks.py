"""Checks on models, inputs, targets and layer names (and :func:`eval_mode`, from :mod:`.sharing`).

Everything here validates or normalises what the user passed before a forward pass runs;
recording the forward pass itself is :mod:`saliency_widget.engine.capture`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..errors import InputError, LayerError, ModelError, choices
from .compiled import unwrap_compiled
from .keys import LayerKey
from .sharing import eval_mode
from .walk import submodules

__all__ = [
    "check_channel_position",
    "check_device",
    "check_layer_key",
    "check_layer_name",
    "check_model",
    "eval_mode",
    "forward_error",
    "gradients_disabled",
    "min_input_side",
    "model_device_dtype",
    "model_input",
    "module_names",
    "prepare_inputs",
    "resolve_targets",
]


def check_model(model: Any) -> nn.Module:
    """Return the module to explain (``model``, or a compiled model's original), else raise :class:`ModelError`."""
    if isinstance(model, (torch.jit.ScriptModule, torch.jit.ScriptFunction)):
        raise ModelError(
            f"got a TorchScript model ({type(model).__name__}); its ReLUs run inside the TorchScript "
            "interpreter where saliency-widget cannot change their backward rule. Pass the original "
            "Python nn.Module instead (before torch.jit.script/trace)."
        )
    if not isinstance(model, nn.Module):
        raise ModelError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return unwrap_compiled(model)  # torch.compile: explain _orig_mod, or refuse loudly


DEVICE_CHOICES = ("cpu", "cuda", "cuda:N", "mps", "xpu", "meta")
"""Device strings :func:`check_device` names in its message (``torch.device`` accepts a few more)."""


def check_device(device: Any) -> torch.device | None:
    """``device`` as a ``torch.device`` (None stays None); raise :class:`InputError` for a bad string.

    Parameters
    ----------
    device
        None, a ``torch.device``, a device string (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``) or
        a CUDA index.
    """
    if device is None or isinstance(device, torch.device):
        return device
    if isinstance(device, (str, int)) and not isinstance(device, bool):
        try:
            return torch.device(device)
        except (RuntimeError, ValueError, TypeError):
            pass
    raise InputError(
        f"unknown device {device!r}; expected a device string such as {', '.join(map(repr, DEVICE_CHOICES))} "
        "(N a GPU index), a torch.device, or None for the model's device"
    )


def model_input(x: torch.Tensor) -> torch.Tensor:
    """A copy of ``x`` to hand to the model, so that a forward may modify its input in place.

    A model that runs ``x.sub_(0.5)`` would fail on a leaf that requires grad ("a leaf Variable
    that requires grad is being used in an in-place operation") and, without grad, would
    change the engine's own copy. The copy is not a leaf: gradients still reach ``x``.
    """
    return x.clone()


def gradients_disabled(output: Any, inputs: torch.Tensor) -> str | None:
    """Why no gradient can reach ``inputs`` from the model's ``output``, in one line; None when one can.

    Parameters
    ----------
    output
        The tensor the forward pass returned (logits ``(N, K)`` or a layer's output).
    inputs
        The ``(N, C, H, W)`` tensor the forward pass ran on (it requires grad).
    """
    if not isinstance(output, torch.Tensor) or output.requires_grad or not inputs.requires_grad:
        return None
    return (
        "the model disables gradients: its output does not require grad (a forward decorated with "
        "@torch.no_grad() or torch.inference_mode(), or a .detach() on the way), so no method that "
        "needs a backward pass can run; occlusion, which needs only forward passes, still works. "
        "Remove the decorator, or wrap the model so that its forward runs with gradients"
    )


_SIZE_ERRORS = (
    "Output size is too small",
    "Kernel size can't be greater than actual input size",
    "Padding size should be less than the corresponding input dimension",
    "mat1 and mat2 shapes cannot be multiplied",
)


def _as_pair(v: Any) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def min_input_side(model: nn.Module) -> int | None:
    """Smallest square input side every 2-D convolution and pooling layer of ``model`` accepts.

    Layer arithmetic on the convolutions and max / average pools in registration order,
    assuming they run one after the other (a plain chain such as VGG or the bundled model;
    in networks with branches the estimate is too large). Backwards from one output pixel, a
    layer of kernel ``k``, stride ``s``, padding ``p`` and dilation ``d`` needs
    ``(n - 1) * s + d * (k - 1) + 1 - 2 * p`` input pixels for ``n`` output pixels.

    Returns
    -------
    int or None
        The side in pixels, or None when the model has no such layer.
    """
    ops: list[tuple[int, int, int, int]] = []  # (kernel, stride, padding, dilation) along the height
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            if not isinstance(m.padding, str):
                ops.append((_as_pair(m.kernel_size)[0], _as_pair(m.stride)[0], _as_pair(m.padding)[0], _as_pair(m.dilation)[0]))
            # padding="same"/"valid" strings: "same" keeps the size, "valid" is padding 0
            elif m.padding == "valid":
                ops.append((_as_pair(m.kernel_size)[0], _as_pair(m.stride)[0], 0, _as_pair(m.dilation)[0]))
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            k = _as_pair(m.kernel_size)[0]
            stride = m.stride if m.stride is not None else m.kernel_size
            dil = _as_pair(getattr(m, "dilation", 1))[0]
            ops.append((k, _as_pair(stride)[0], _as_pair(m.padding)[0], dil))
    if not ops:
        return None
    n = 1
    for k, s, p, d in reversed(ops):
        n = max(1, (n - 1) * s + d * (k - 1) + 1 - 2 * p)
    return n


def _runs_on(model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> bool:
    """Whether a no-grad eval forward of zeros of ``shape`` succeeds (any failure: False)."""
    try:
        with torch.no_grad(), eval_mode(model):
            model(torch.zeros(shape, dtype=dtype, device=device))
    except Exception:  # noqa: BLE001 -- a probe: any failure means "does not run"
        return False
    return True


def forward_error(err: BaseException, inputs: torch.Tensor, model: nn.Module) -> InputError | None:
    """The :class:`InputError` for a forward pass that failed because the input is too small (or the wrong size).

    Parameters
    ----------
    err
        What the model's forward raised.
    inputs
        The ``(N, C, H, W)`` inputs it ran on.
    model
        The model; when the failure is a size error, :func:`min_input_side` estimates the
        smallest side, and that estimate is named only if a no-grad forward of zeros at that side
        runs and one pixel less does not (two forward passes of one tiny image, on this error
        path only).

    Returns
    -------
    InputError or None
        None when ``err`` is not a size error (the caller re-raises it unchanged).
    """
    msg = str(err)
    if not isinstance(err, RuntimeError) or not any(s in msg for s in _SIZE_ERRORS):
        return None
    shape = tuple(inputs.shape)
    first = msg.strip().splitlines()[0] if msg.strip() else type(err).__name__
    side = min_input_side(model)
    if side is not None:
        one = (1, *shape[1:-2])
        if not (_runs_on(model, (*one, side, side), inputs.dtype, inputs.device)
                and (side == 1 or not _runs_on(model, (*one, side - 1, side - 1), inputs.dtype, inputs.device))):
            side = None
    if side is not None and min(shape[-2:]) < side:
        return InputError(
            f"inputs of shape {shape} ({shape[-2]}x{shape[-1]} pixels) are too small for the model: it needs at "
            f"least {side}x{side} pixels (from its convolution and pooling layers); resize the image up. "
            f"(the model's error: {first})"
        )
    return InputError(
        f"the model cannot run on inputs of shape {shape} ({shape[-2]}x{shape[-1]} pixels): {first}. "
        "The input is too small or not the size the model expects; resize it as the model's preprocessing does"
    )


def model_device_dtype(model: nn.Module) -> tuple[torch.device | None, torch.dtype | None]:
    """The device and floating dtype of the model's first parameter or buffer (None if it has none)."""
    first: torch.Tensor | None = None
    # lazily: this runs on every map request, and materialising every parameter list is not free
    for t in itertools.chain(model.parameters(), model.buffers()):
        if t.is_floating_point():
            return t.device, t.dtype
        if first is None:
            first = t
    return (first.device, None) if first is not None else (None, None)


def _first_conv_in_channels(model: nn.Module) -> int | None:
    for m in submodules(model):
        if isinstance(m, nn.modules.conv._ConvNd):
            return int(m.in_channels)
    return None


def _space_to_depth(channels: int, expected: int) -> bool:
    """Whether a first convolution of ``expected`` input channels may read ``channels``-channel images.

    True when the image may be folded k x k into channels before it (``expected = channels * k**2``,
    k >= 2: TResNet's space-to-depth stem, a pixel unshuffle).
    """
    k = math.isqrt(expected // channels) if expected % channels == 0 else 0
    return k >= 2 and channels * k * k == expected


def prepare_inputs(
    inputs: Any, model: nn.Module, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.device, torch.dtype]:
    """Validate ``inputs`` and return a private copy on the model's device that requires grad.

    Parameters
    ----------
    inputs
        Float tensor of shape ``(N, C, H, W)``.
    model
        The model (for its device, dtype and first convolution's channel count).
    device
        Device to compute on; defaults to the model's.

    Returns
    -------
    x, original_device, original_dtype
        ``x`` is a leaf copy ``(N, C, H, W)`` with ``requires_grad=True``; the user's tensor is
        never modified, even by models that apply in-place ops to their input.
    """
    if not isinstance(inputs, torch.Tensor):
        raise InputError(
            f"inputs must be a torch.Tensor of shape (N, C, H, W), got {type(inputs).__name__}; "
            "convert with torch.as_tensor(...) (and the model's preprocessing) first"
        )
    if inputs.device.type == "meta":
        raise InputError(
            f"inputs are on the 'meta' device (shape {tuple(inputs.shape)}, no data); pass a real tensor, "
            "e.g. on 'cpu'"
        )
    mdev, mdtype = model_device_dtype(model)
    if mdev is not None and mdev.type == "meta":
        raise ModelError(
            "the model's parameters are on the 'meta' device (shapes only, no weights), so it cannot be run; "
            "materialise it first, e.g. model.to_empty(device='cpu') then model.load_state_dict(...)"
        )
    if inputs.dim() != 4:
        hint = " (add a batch dimension with inputs.unsqueeze(0))" if inputs.dim() == 3 else ""
        raise InputError(
            f"inputs must have 4 dimensions (N, C, H, W), got {inputs.dim()} with shape "
            f"{tuple(inputs.shape)}{hint}"
        )
    if not inputs.is_floating_point():
        raise InputError(
            f"inputs must be a floating-point tensor (float32 or float64), got dtype {inputs.dtype}; "
            "use inputs.float() (after scaling and normalising as the model expects)"
        )
    if inputs.shape[0] == 0:
        raise InputError(f"inputs has an empty batch (shape {tuple(inputs.shape)}); pass at least one image")
    # one pass and one read (min and max: NaN propagates, an Inf shows in one of them); the
    # per-call cost of a one-shot map on a small model
    if not all(math.isfinite(v) for v in torch.stack(torch.aminmax(inputs.detach())).tolist()):
        n_bad = int((~torch.isfinite(inputs)).sum())
        raise InputError(
            f"inputs contain {n_bad} NaN or Inf value(s); maps of non-finite inputs are meaningless. "
            "Check the image loading and normalisation"
        )
    expected_c = _first_conv_in_channels(model)
    if expected_c is not None and inputs.shape[1] != expected_c and not _space_to_depth(int(inputs.shape[1]), expected_c):
        raise InputError(
            f"inputs have {inputs.shape[1]} channel(s) (shape {tuple(inputs.shape)}) but the model's first "
            f"convolution expects {expected_c}; convert the image (e.g. PIL .convert('RGB'))"
        )
    dev = device if device is not None else (mdev if mdev is not None else inputs.device)
    if mdev is not None and torch.device(dev) != mdev:
        raise InputError(
            f"requested device {dev} but the model's parameters are on {mdev}; move the model "
            f"(model.to({str(dev)!r})) or leave device=None to use the model's device"
        )
    dtype = mdtype if mdtype is not None else inputs.dtype
    if dtype in (torch.float16, torch.bfloat16) and torch.device(dev).type == "cpu":
        raise ModelError(
            f"the model is in {dtype} on the CPU, where half-precision backward passes are slow or "
            "unsupported; use model.float() (or run on a GPU)"
        )
    x = inputs.detach().to(device=dev, dtype=dtype).clone().requires_grad_(True)
    return x, inputs.device, inputs.dtype


def module_names(model: nn.Module) -> list[str]:
    """Dotted names of all submodules (the model itself excluded)."""
    return [n for n, _ in model.named_modules() if n]


def check_layer_name(model: nn.Module, layer: Any) -> str:
    """Validate a dotted module name; raise :class:`LayerError` listing the valid names."""
    names = module_names(model)
    if not isinstance(layer, str) or layer not in names:
        raise LayerError(
            f"unknown layer {layer!r}; expected a dotted module name from model.named_modules(): "
            f"{choices(names)}"
        )
    return layer


def check_layer_key(model: nn.Module, layer: Any, call: int = 0) -> LayerKey:
    """Read ``layer`` (``"name"``, ``"name#call"`` or a :class:`LayerKey`) and check that the module exists.

    Parameters
    ----------
    model
        The model whose ``named_modules()`` define the valid names.
    layer
        The layer as the user gave it; anything that is not a str or key is reported by
        :func:`check_layer_name` with the list of valid names.
    call
        Execution index when ``layer`` names none (see :meth:`LayerKey.parse`).

    Returns
    -------
    LayerKey
        Whether that execution ran is checked later, against a recorded forward pass.
    """
    if not isinstance(layer, (str, LayerKey)):
        check_layer_name(model, layer)  # raises: not a name
    key = LayerKey.parse(layer, call)
    check_layer_name(model, key.name)
    return key


def resolve_targets(target: Any, logits: torch.Tensor) -> torch.Tensor:
    """Turn a target specification into per-sample class indices.

    Parameters
    ----------
    target
        None (each sample's predicted class), an int, or a sequence / 1-D tensor of N ints.
    logits
        Model output of shape ``(N, K)``.

    Returns
    -------
    torch.Tensor
        Long tensor of shape ``(N,)`` on ``logits.device``.
    """
    n, k = logits.shape
    if target is None:
        return logits.detach().argmax(dim=1)
    if isinstance(target, bool):
        raise InputError(f"target must be an int class index, got the bool {target!r}")
    if isinstance(target, torch.Tensor):
        if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
            raise InputError(f"target tensor must hold integer class indices, got dtype {target.dtype}")
        t = target.reshape(-1) if target.dim() == 0 else target
        if t.dim() != 1:
            raise InputError(f"target must be an int or a 1-D sequence of N={n} ints, got shape {tuple(target.shape)}")
        if t.device.type == "cpu" and t.numel() <= 4096:  # the common case, checked in Python: 2 ops, not 7
            return _checked_targets(t.tolist(), n, k, logits.device)
        t = t.to(device=logits.device, dtype=torch.long)
    elif isinstance(target, int) or (hasattr(target, "__index__") and not isinstance(target, (str, bytes))):
        try:
            index = int(target.__index__())
        except Exception:
            raise InputError(f"target {target!r} is not an integer class index") from None
        return _checked_targets([index], n, k, logits.device)
    elif isinstance(target, Sequence) and not isinstance(target, (str, bytes)):
        vals = list(target)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
            raise InputError(f"target sequence must contain ints, got {vals!r}")
        return _checked_targets(vals, n, k, logits.device)
    else:
        raise InputError(
            f"target must be None, an int, or a sequence / 1-D tensor of ints, got {type(target).__name__}"
        )
    if t.numel() == 1 and n != 1:
        t = t.expand(n)
    if t.numel() != n:
        raise InputError(f"target has {t.numel()} entries but the batch has N={n} samples; give one per sample or one int")
    bad = (t < 0) | (t >= k)
    if bool(bad.any()):
        raise InputError(
            f"target {t[bad][0].item()} is out of range: the model has {k} classes, valid targets are 0..{k - 1}"
        )
    return t.clone()


def _checked_targets(vals: list[int], n: int, k: int, device: torch.device) -> torch.Tensor:
    """``(N,)`` long tensor of the class indices ``vals`` (1 or N of them) in ``0..k-1``, else :class:`InputError`."""
    if len(vals) == 1 and n != 1:
        vals = vals * n
    if len(vals) != n:
        raise InputError(f"target has {len(vals)} entries but the batch has N={n} samples; give one per sample or one int")
    for v in vals:
        if not 0 <= v < k:
            raise InputError(f"target {v} is out of range: the model has {k} classes, valid targets are 0..{k - 1}")
    return torch.tensor(vals, dtype=torch.long, device=device)


def check_channel_position(
    act: torch.Tensor, layer: str, channel: Any, position: Any
) -> tuple[int | torch.Tensor, torch.Tensor | None]:
    """Validate a unit of a layer output for projections and receptive fields.

    Parameters
    ----------
    act
        The layer's output, ``(N, C, H, W)`` or ``(N, C)``.
    layer
        Its key, for messages.
    channel
        One channel index, or N of them (a sequence or ``(N,)`` tensor, one per sample).
    position
        ``(y, x)``, an ``(N, 2)`` array of ints, or None (each sample's strongest activation).

    Returns
    -------
    channel, position
        ``channel`` as given (one int) or an ``(N,)`` long tensor; ``position`` None or an
        ``(N, 2)`` long tensor.
    """
    if act.dim() not in (2, 4):
        raise LayerError(
            f"layer {layer!r} outputs shape {tuple(act.shape)}; projections need (N, C, H, W) or (N, C) outputs"
        )
    c_count = act.shape[1]
    if isinstance(channel, (torch.Tensor, list, tuple)):
        # one channel per sample (used to project many winners in one batch)
        ch = torch.as_tensor(channel)
        if ch.shape != (act.shape[0],) or ch.is_floating_point() or bool(((ch < 0) | (ch >= c_count)).any()):
            raise InputError(
                f"per-sample channels must be N={act.shape[0]} ints in 0..{c_count - 1}, got {channel!r}"
            )
        channel = ch.to(torch.long)
    elif isinstance(channel, bool) or not isinstance(channel, int) or not 0 <= channel < c_count:
        raise InputError(f"channel {channel!r} is out of range for layer {layer!r}: valid channels are 0..{c_count - 1}")
    if act.dim() == 2:
        if position is not None:
            raise InputError(f"layer {layer!r} has no spatial dimensions (shape {tuple(act.shape)}); use position=None")
        return channel, None
    n, _, h, w = act.shape
    if position is None:
        return channel, None
    pos = torch.as_tensor(position)
    if pos.is_floating_point() or pos.shape not in ((2,), (n, 2)):
        raise InputError(f"position must be (y, x) or an (N, 2) array of ints, got {position!r}")
    pos = pos.reshape(-1, 2).expand(n, 2).to(torch.long)
    bad = (pos[:, 0] < 0) | (pos[:, 0] >= h) | (pos[:, 1] < 0) | (pos[:, 1] >= w)
    if bool(bad.any()):
        y, x = pos[bad][0].tolist()
        raise InputError(
            f"position (y={y}, x={x}) is out of range for layer {layer!r} with feature maps of "
            f"{h}x{w}: valid y is 0..{h - 1}, x is 0..{w - 1}"
        )
    return channel, pos
