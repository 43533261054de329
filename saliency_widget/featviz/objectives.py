"""What a visualization maximises: objectives on a layer, the logits or the image itself.

An :class:`Objective` maps what one forward pass read (a :class:`Readout`) to one value per
image, shape ``(n,)``. Objectives compose with ``+``, ``-`` and scalar ``*`` / ``/``::

    from saliency_widget import objectives as obj
    obj.channel("features.relu5", 3) - 0.05 * obj.total_variation()

Layer objectives read the layer's ``(n, C, H, W)`` view whatever its layout (NCHW, NHWC or
tokens, see :mod:`saliency_widget.engine.layouts`); a flat ``(n, C)`` layer reads as
``(n, C, 1, 1)``. The penalties (:func:`l1`, :func:`l2`, :func:`total_variation`,
:func:`blur`) measure the image before transformations, in [0, 1]; subtract them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from ..engine.keys import LayerKey
from ..errors import InputError, LayerError

__all__ = [
    "Objective",
    "Readout",
    "as_objectives",
    "blur",
    "channel",
    "class_logit",
    "dream",
    "inversion",
    "l1",
    "l2",
    "neuron",
    "total_variation",
]


class Readout(Protocol):
    """What one forward pass of a batch of ``n`` images exposes to an objective."""

    images: torch.Tensor
    """The images before transformations, ``(n, 3, H, W)`` in [0, 1]."""

    def layer(self, key: LayerKey) -> torch.Tensor:
        """The layer's output viewed as ``(n, C, H, W)``."""
        ...

    def logits(self) -> torch.Tensor:
        """The model's class scores ``(n, K)``."""
        ...

    def class_index(self, k: int | str) -> int:
        """The index of class ``k`` (an index, or a name among the model's labels)."""
        ...

    def reference(self, key: LayerKey, image: torch.Tensor) -> torch.Tensor:
        """The layer's ``(1, C, H, W)`` view on the fixed ``image`` ``(1, 3, H, W)`` (no grad, cached)."""
        ...


#: Validates an objective against the model: ``check(shapes, num_classes)`` with ``shapes``
#: the ``(C, H, W)`` of each layer it reads and ``num_classes`` K (None if unknown).
Check = Callable[[dict[LayerKey, tuple[int, int, int]], "int | None"], None]


@dataclass(frozen=True, eq=False)
class Objective:
    """A differentiable score per image, to be maximised.

    Attributes
    ----------
    fn
        ``fn(readout) -> (n,)`` tensor.
    name
        Readable description, e.g. ``"channel('features.relu5', 3)"``.
    layers
        The layer executions it reads.
    uses_logits
        Whether it reads the model's class scores (the forward pass must then run to the end).
    classes
        The classes of its :func:`class_logit` terms (for ``stop_at_probability``).
    checks
        Validations against the model's layer shapes and class count.
    """

    fn: Callable[[Readout], torch.Tensor]
    name: str
    layers: tuple[LayerKey, ...] = ()
    uses_logits: bool = False
    classes: tuple[Any, ...] = ()
    checks: tuple[Check, ...] = field(default=(), repr=False)

    def __call__(self, readout: Readout) -> torch.Tensor:
        """The value per image, ``(n,)``."""
        return self.fn(readout)

    def _join(self, other: Objective, fn: Callable[[Readout], torch.Tensor], name: str) -> Objective:
        layers = tuple(dict.fromkeys((*self.layers, *other.layers)))
        return Objective(
            fn, name, layers, self.uses_logits or other.uses_logits,
            tuple(dict.fromkeys((*self.classes, *other.classes))), (*self.checks, *other.checks),
        )  # fmt: skip

    def __add__(self, other: Any) -> Objective:
        if isinstance(other, Objective):
            a, b = self.fn, other.fn
            return self._join(other, lambda r: a(r) + b(r), f"{self.name} + {other.name}")
        if _is_scalar(other):
            f, k = self.fn, float(other)
            return self._scaled(lambda r: f(r) + k, f"{self.name} + {k:g}")
        raise _compose_error("+", other)

    def __radd__(self, other: Any) -> Objective:
        if _is_scalar(other) and float(other) == 0.0:  # sum([...]) starts from 0
            return self
        return self.__add__(other)

    def __neg__(self) -> Objective:
        f = self.fn
        return self._scaled(lambda r: -f(r), f"-({self.name})")

    def __sub__(self, other: Any) -> Objective:
        if isinstance(other, Objective):
            a, b = self.fn, other.fn
            return self._join(other, lambda r: a(r) - b(r), f"{self.name} - {other.name}")
        if _is_scalar(other):
            return self.__add__(-float(other))
        raise _compose_error("-", other)

    def __mul__(self, other: Any) -> Objective:
        if not _is_scalar(other):
            raise _compose_error("*", other)
        f, k = self.fn, float(other)
        return self._scaled(lambda r: k * f(r), f"{k:g} * {self.name}")

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> Objective:
        if not _is_scalar(other) or float(other) == 0.0:
            raise _compose_error("/", other)
        return self.__mul__(1.0 / float(other))

    def _scaled(self, fn: Callable[[Readout], torch.Tensor], name: str) -> Objective:
        return Objective(fn, name, self.layers, self.uses_logits, self.classes, self.checks)

    def __repr__(self) -> str:
        return f"Objective({self.name})"


def _is_scalar(v: Any) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool)


def _compose_error(op: str, other: Any) -> InputError:
    return InputError(
        f"objectives compose with +, - (another objective or a number) and * / (a non-zero number); "
        f"got {op} {type(other).__name__} {other!r:.60}"
    )


def as_objectives(objectives: Any) -> list[Objective]:
    """One objective or a non-empty sequence of them, as a list (one image each)."""
    if isinstance(objectives, Objective):
        return [objectives]
    if isinstance(objectives, Sequence) and not isinstance(objectives, (str, bytes)) and len(objectives) > 0:
        bad = [o for o in objectives if not isinstance(o, Objective)]
        if not bad:
            return list(objectives)
        objectives = bad[0]
    raise InputError(
        f"objectives must be an Objective or a non-empty list of them (e.g. objectives.channel('features.relu5', 3)), "
        f"got {type(objectives).__name__} {objectives!r:.60}"
    )


# ----------------------------------------------------------------------------- layer objectives


def _key(layer: Any) -> LayerKey:
    if not isinstance(layer, (str, LayerKey)):
        raise LayerError(f"a layer must be a name like 'features.relu5' (or 'name#call', a LayerKey), got {type(layer).__name__} {layer!r}")
    return LayerKey.parse(layer)


def _index(value: Any, what: str) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise InputError(f"{what} must be an int, got {type(value).__name__} {value!r:.60}")
    return int(value.__index__())


def _channel_check(key: LayerKey, c: int) -> Check:
    def check(shapes: dict[LayerKey, tuple[int, int, int]], num_classes: int | None) -> None:
        n = shapes[key][0]
        if not 0 <= c < n:
            raise InputError(f"channel {c} is out of range for layer {str(key)!r} ({n} channels): valid channels are 0..{n - 1}")

    return check


def channel(layer: str | LayerKey, c: int) -> Objective:
    """Mean activation of channel ``c`` of ``layer`` over its spatial positions (Olah et al. 2017).

    Parameters
    ----------
    layer
        Layer key, ``"name"`` or ``"name#call"``.
    c
        Channel index.
    """
    key, c = _key(layer), _index(c, "channel")
    return Objective(lambda r: r.layer(key)[:, c].mean((1, 2)), f"channel({str(key)!r}, {c})", (key,), checks=(_channel_check(key, c),))


def neuron(layer: str | LayerKey, c: int, y: int | None = None, x: int | None = None) -> Objective:
    """Activation of channel ``c`` of ``layer`` at one position ``(y, x)``; the centre by default.

    Parameters
    ----------
    layer
        Layer key.
    c
        Channel index.
    y, x
        Row and column on the layer's grid (default ``H // 2``, ``W // 2``).
    """
    key, c = _key(layer), _index(c, "channel")
    yy = None if y is None else _index(y, "y")
    xx = None if x is None else _index(x, "x")

    def fn(r: Readout) -> torch.Tensor:
        v = r.layer(key)
        h, w = v.shape[2:]
        return v[:, c, h // 2 if yy is None else yy, w // 2 if xx is None else xx]

    def check_pos(shapes: dict[LayerKey, tuple[int, int, int]], num_classes: int | None) -> None:
        _, h, w = shapes[key]
        for name, v, n in (("y", yy, h), ("x", xx, w)):
            if v is not None and not 0 <= v < n:
                raise InputError(f"{name}={v} is out of range for layer {str(key)!r} with a {h}x{w} grid: valid {name} is 0..{n - 1}")

    where = "" if yy is None and xx is None else f", y={yy}, x={xx}"
    return Objective(fn, f"neuron({str(key)!r}, {c}{where})", (key,), checks=(_channel_check(key, c), check_pos))


def dream(layer: str | LayerKey) -> Objective:
    """DeepDream: the mean squared activation of the whole layer (Mordvintsev et al. 2015)."""
    key = _key(layer)
    return Objective(lambda r: r.layer(key).pow(2).mean((1, 2, 3)), f"dream({str(key)!r})", (key,))


def inversion(layer: str | LayerKey, image: Any) -> Objective:
    """Match ``image``'s representation at ``layer`` (Mahendran & Vedaldi 2015).

    The value is ``-||phi(x) - phi(image)||^2 / ||phi(image)||^2``: 0 for a perfect match.

    Parameters
    ----------
    layer
        Layer key.
    image
        The image to invert, RGB in [0, 1] before the model's preprocessing: ``(3, H, W)`` or
        ``(1, 3, H, W)``, the size of the visualization.
    """
    key = _key(layer)
    if not isinstance(image, torch.Tensor) or image.dim() not in (3, 4) or image.shape[-3] != 3 or (image.dim() == 4 and image.shape[0] != 1):
        raise InputError(
            f"inversion needs one RGB image tensor (3, H, W) or (1, 3, H, W) in [0, 1], got "
            f"{type(image).__name__} {tuple(getattr(image, 'shape', ()))}"
        )
    target = image.detach().reshape(1, *image.shape[-3:]).float()

    def fn(r: Readout) -> torch.Tensor:
        ref = r.reference(key, target)
        return -(r.layer(key) - ref).pow(2).sum((1, 2, 3)) / ref.pow(2).sum().clamp_min(1e-12)

    return Objective(fn, f"inversion({str(key)!r})", (key,))


def class_logit(k: int | str) -> Objective:
    """The class score (logit, before softmax) of class ``k`` (Simonyan et al. 2013).

    Parameters
    ----------
    k
        Class index, or a class name (resolved with the model's labels).
    """
    if isinstance(k, bool) or not (isinstance(k, str) or hasattr(k, "__index__")):
        raise InputError(f"class must be an int index or a class name, got {type(k).__name__} {k!r:.60}")
    kk: int | str = k if isinstance(k, str) else int(k.__index__())

    def fn(r: Readout) -> torch.Tensor:
        return r.logits()[:, r.class_index(kk)]

    def check(shapes: dict[LayerKey, tuple[int, int, int]], num_classes: int | None) -> None:
        if isinstance(kk, int) and num_classes is not None and not 0 <= kk < num_classes:
            raise InputError(f"class {kk} is out of range: the model has {num_classes} classes, valid classes are 0..{num_classes - 1}")

    return Objective(fn, f"class_logit({kk!r})", uses_logits=True, classes=(kk,), checks=(check,))


# ----------------------------------------------------------------------------- penalties on the image


def l1(constant: float = 0.5) -> Objective:
    """Mean absolute difference of the image from ``constant``: ``mean(|x - constant|)`` per image."""
    c = float(constant)
    return Objective(lambda r: (r.images - c).abs().mean((1, 2, 3)), f"l1({c:g})")


def l2(constant: float = 0.5) -> Objective:
    """Mean squared difference of the image from ``constant``: ``mean((x - constant)^2)`` per image."""
    c = float(constant)
    return Objective(lambda r: (r.images - c).pow(2).mean((1, 2, 3)), f"l2({c:g})")


def total_variation() -> Objective:
    """Anisotropic total variation: mean ``|x[i+1, j] - x[i, j]|`` plus mean ``|x[i, j+1] - x[i, j]|``."""

    def fn(r: Readout) -> torch.Tensor:
        x = r.images
        return (x[:, :, 1:] - x[:, :, :-1]).abs().mean((1, 2, 3)) + (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean((1, 2, 3))

    return Objective(fn, "total_variation()")


def blur() -> Objective:
    """Distance to a blurred copy (Lucid's ``blur_input_each_step``): ``mean((x - b)^2) / 2``.

    ``b`` is the 3x3 box blur of the image, held constant, so subtracting this penalty pulls
    each pixel towards its neighbours' mean by ``(x - b)`` (scaled by the penalty's weight).
    """

    def fn(r: Readout) -> torch.Tensor:
        x = r.images
        with torch.no_grad():
            b = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        return 0.5 * (x - b).pow(2).mean((1, 2, 3))

    return Objective(fn, "blur()")
