"""Checks on models and inputs, and the context that leaves the user's model as it was."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import InputError, LayerError, ModelError, choices
from .compiled import unwrap_compiled  # [models]

__all__ = [
    "check_model",
    "model_device_dtype",
    "prepare_inputs",
    "eval_mode",
    "LayerCapture",
    "StopForward",
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
    return unwrap_compiled(model)  # [models] torch.compile: explain _orig_mod, or refuse loudly


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
    for m in model.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            return int(m.in_channels)
    return None


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
    if not bool(torch.isfinite(inputs).all()):
        n_bad = int((~torch.isfinite(inputs)).sum())
        raise InputError(
            f"inputs contain {n_bad} NaN or Inf value(s); maps of non-finite inputs are meaningless. "
            "Check the image loading and normalisation"
        )
    expected_c = _first_conv_in_channels(model)
    if expected_c is not None and inputs.shape[1] != expected_c:
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


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Run in eval mode and give every submodule its own previous ``training`` flag back."""
    # only the modules in training mode are switched (and switched back): usually none are,
    # and model.eval() on every map request is measurable on small models
    training = [m for m in model.modules() if m.training]
    try:
        for m in training:
            m.training = False
        yield
    finally:
        for m in training:
            m.training = True


class StopForward(BaseException):
    """Raised by a capture hook to end the forward pass once the wanted layer has run.

    A BaseException so that a model's own ``except Exception`` cannot swallow it.
    """


@dataclass
class LayerRecord:
    """One execution of one module during a recorded forward pass.

    Attributes
    ----------
    name, call
        Dotted module name and which execution of it (0 = first).
    type
        Module class name.
    tensor
        The output tensor object, shape ``(N, ...)``; its values may have been changed
        afterwards by an in-place op (see ``version``).
    version
        ``tensor._version`` right after the module ran: a different value now means an
        in-place op changed it, so its values must be recomputed.
    edge
        Autograd edge of the output at the time the module ran (None if no grad).
    """

    name: str
    call: int
    type: str
    tensor: torch.Tensor
    version: int
    edge: Any
    value: torch.Tensor | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        return self.name if self.call == 0 else f"{self.name}#{self.call}"

    def current_value(self) -> torch.Tensor | None:
        """The forward value, if no in-place op changed it since; else None."""
        if self.value is not None:
            return self.value
        if self.tensor._version == self.version:
            return self.tensor.detach()
        return None


class LayerCapture:
    """Forward hooks that record module outputs; installed only inside ``with``.

    Parameters
    ----------
    model
        The model; hooks go on its submodules (not on the model itself).
    names
        Module names to hook, or None for all.
    stop_at
        ``(name, call)``: raise :class:`StopForward` right after that execution.
    clone
        Keep a detached copy of the values of the ``stop_at`` execution.
    """

    def __init__(
        self,
        model: nn.Module,
        names: Sequence[str] | None = None,
        stop_at: tuple[str, int] | None = None,
        clone: bool = False,
    ) -> None:
        self.model = model
        self.names = None if names is None else set(names)
        self.stop_at = stop_at
        self.clone = clone
        self.records: list[LayerRecord] = []
        self.counts: dict[str, int] = {}
        self._handles: list[Any] = []

    def __enter__(self) -> "LayerCapture":
        try:
            for name, module in self.model.named_modules():
                if name == "" or (self.names is not None and name not in self.names):
                    continue
                self._handles.append(module.register_forward_hook(self._make_hook(name)))
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._remove()

    def _remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _make_hook(self, name: str) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            call = self.counts.get(name, 0)
            self.counts[name] = call + 1
            if not isinstance(output, torch.Tensor):
                return
            edge = None
            if output.requires_grad:
                gfn = output.grad_fn
                # A C++ node directly (get_gradient_edge costs ~20 µs per layer); leaves and Python
                # nodes (our ReLU Function) need get_gradient_edge's ownership token.
                edge = (
                    torch.autograd.graph.GradientEdge(gfn, output.output_nr)
                    if gfn is not None and not isinstance(gfn, torch._C._FunctionBase)
                    else torch.autograd.graph.get_gradient_edge(output)
                )
            rec = LayerRecord(name, call, type(module).__name__, output, output._version, edge)
            if self.stop_at == (name, call) and self.clone:
                rec.value = output.detach().clone()
            self.records.append(rec)
            if self.stop_at == (name, call):
                raise StopForward

        return hook


def forward_to(
    model: nn.Module, x: torch.Tensor, layer: str, call: int = 0, *, clone: bool = False, mode: Any = None
) -> torch.Tensor:
    """Run ``model(x)`` in eval mode until ``layer`` ran for the ``call``-th time; return that output.

    Grad mode is the caller's (wrap in ``torch.no_grad()`` for a plain scan). ``mode`` is an
    optional TorchFunctionMode active during the partial forward; ``clone`` returns a copy
    that later in-place ops cannot change.
    """
    cap = LayerCapture(model, names=[layer], stop_at=(layer, call), clone=clone)
    with eval_mode(model), cap, (mode if mode is not None else contextlib.nullcontext()):
        try:
            model(x)
        except StopForward:
            pass
    for rec in cap.records:
        if (rec.name, rec.call) == (layer, call):
            return rec.value if clone and rec.value is not None else rec.tensor
    ran = sorted(c for (n, c) in ((r.name, r.call) for r in cap.records) if n == layer)
    raise LayerError(
        f"layer {layer!r} call {call} did not run in the forward pass"
        + (f"; valid calls are {ran}" if ran else " (it is not on the path of this input)")
    )


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
        t = t.to(device=logits.device, dtype=torch.long)
    elif isinstance(target, int) or (hasattr(target, "__index__") and not isinstance(target, (str, bytes))):
        try:
            t = torch.tensor([int(target.__index__())], device=logits.device)
        except Exception:
            raise InputError(f"target {target!r} is not an integer class index") from None
    elif isinstance(target, Sequence) and not isinstance(target, (str, bytes)):
        vals = list(target)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
            raise InputError(f"target sequence must contain ints, got {vals!r}")
        t = torch.tensor(vals, dtype=torch.long, device=logits.device)
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
