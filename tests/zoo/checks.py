"""The four zoo checks, on one model family at a time, and the summary table they fill.

Each family is a :class:`Case`: a builder of a random-weight model (no download) for an input
size, the size the checks run at and a twin size with different height, width, channel and
token counts (the coincidence check). Checks:

(a) :func:`gradient_error`: the engine's gradient (ReLU interception on) equals plain autograd;
(b) :func:`gradcam_against_reference`: the default Grad-CAM layer's map is not degenerate and
    equals pytorch-grad-cam's at the same layer (and the same call of a reused module), with
    the documented ``reshape_transform`` of its layout (none, channels last, ViT tokens);
(c) :func:`coincidences`: every layer reported NCHW / NHWC / tokens at one size is reported the
    same way at the twin size with the same channel count and a grid that one stride gives at
    both sizes (:func:`grid_strides`; a third size settles a grid that fits only with a wide
    border): a window partition or an attention map whose shape matches a grid at one size only
    (its "channels" are windows, its "grid" is pixels or heads) fails;
(d) :func:`widget_outcome`: the headless explorer renders the method, or shows one line why not.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

import saliency_widget as sw
from saliency_widget.engine import LayerInfo, available_methods, get_method
from saliency_widget.engine.cam import default_cam_layer

Size = tuple[int, int]
CHECKS = ("gradient", "gradcam", "default", "twin", "widget")


@dataclass(frozen=True)
class Case:
    """One model family of the sweep.

    Attributes
    ----------
    name
        The family's id (the torchvision builder or the timm family).
    build
        ``build(size) -> nn.Module``: random weights, eval mode; ``size`` matters only to
        models fixed to one input size at construction (ViT ``image_size``, timm ``img_size``).
    size, twin
        ``(H, W)`` of the checks and of the coincidence twin.
    xfail
        ``{check: reason}`` of the known failures (``check`` in :data:`CHECKS`, or
        ``"widget:<method>"``); applied as strict xfails.
    slow
        A heavy build or forward (random init of ~100 M parameters or more): marked ``slow`` and run
        only with ``SW_ZOO_FULL=1``, so that the CI sweep stays near its 10-minute budget (the
        smallest builder of every architecture still runs there).
    fixed_size
        The model takes one input size, fixed at construction: the twin is built again.
    """

    name: str
    build: Callable[[Size], nn.Module]
    size: Size
    twin: Size
    xfail: dict[str, str] = field(default_factory=dict)
    slow: bool = False
    fixed_size: bool = False

    def param(self, source: str) -> Any:
        """``pytest.param((source, self))`` with the id ``"<source>-<name>"`` (and the ``slow`` marks of a heavy case)."""
        import pytest

        full = os.environ.get("SW_ZOO_FULL", "") not in ("", "0")
        heavy = [pytest.mark.slow, pytest.mark.skipif(not full, reason="heavy builder: set SW_ZOO_FULL=1 to sweep it")]
        return pytest.param((source, self), id=f"{source}-{self.name}", marks=heavy if self.slow else [])


def seeded_build(build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` with torch's RNG seeded (0) and restored after; the model in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build().eval()


def image(size: Size, seed: int = 5) -> torch.Tensor:
    """A seeded ``(1, 3, H, W)`` input in [-1, 1] (roughly a normalised image)."""
    return torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ------------------------------------------------------------------------- (a) gradient
def autograd_gradient(model: nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    """d logit[target] / d x by plain autograd, ``(1, C, H, W)``."""
    xr = x.clone().requires_grad_(True)
    out = model(xr)
    (g,) = torch.autograd.grad(out[:, target].sum(), xr)
    return g


# ------------------------------------------------------------------------- (b) Grad-CAM
def corr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of two maps after each is min-max normalised."""
    a, b = a.double().flatten(), b.double().flatten()
    a = (a - a.min()) / (a.max() - a.min())
    b = (b - b.min()) / (b.max() - b.min())
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def documented_reshape(info: LayerInfo) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """pytorch-grad-cam's documented ``reshape_transform`` for a layer of ``info``'s layout.

    NCHW: none. Channels last (torchvision Swin): the channel move of the Swin example.
    Tokens: the ViT example (prefix tokens dropped, the rest reshaped to the grid).
    """
    if info.layout == "NCHW":
        return None
    if info.layout == "NHWC":
        return lambda t: t.transpose(2, 3).transpose(1, 2)
    prefix, (h, w) = info.prefix_tokens, info.shape[1:]

    def vit_reshape(t: torch.Tensor) -> torch.Tensor:
        result = t[:, prefix:, :].reshape(t.size(0), h, w, t.size(2))
        return result.transpose(2, 3).transpose(1, 2)

    return vit_reshape


def reference_gradcam(model: nn.Module, info: LayerInfo, x: torch.Tensor, target: int) -> torch.Tensor:
    """pytorch-grad-cam's Grad-CAM at ``info``'s module and call, ``(H, W)``."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    call = info.call

    class CallGradCAM(GradCAM):  # type: ignore[misc]
        # a module run several times (ResNet's block ReLU): its hooks saw every call; keep ours
        def compute_cam_per_layer(self, input_tensor: Any, targets: Any, eigen_smooth: bool) -> Any:
            ag = self.activations_and_grads
            ag.activations, ag.gradients = ag.activations[call : call + 1], ag.gradients[call : call + 1]
            return super().compute_cam_per_layer(input_tensor, targets, eigen_smooth)

    module = model.get_submodule(info.name)
    reshape = documented_reshape(info)

    def copied(t: torch.Tensor) -> torch.Tensor:
        # pytorch-grad-cam keeps the output itself (detached, same storage on the CPU): an in-place op
        # after the layer (DenseNet's F.relu(features, inplace=True) after norm5) would change the
        # activations it weighs; a copy keeps the layer's own output, as its gradient hook does
        t = t.clone()
        return reshape(t) if reshape is not None else t

    with CallGradCAM(model=model, target_layers=[module], reshape_transform=copied) as cam:
        return torch.from_numpy(cam(input_tensor=x, targets=[ClassifierOutputTarget(target)]))[0]


# ------------------------------------------------------------------------- (b') the pooled grid
_POOLS = {torch.nn.functional.adaptive_avg_pool2d, torch.nn.functional.adaptive_max_pool2d}
_MEANS = {torch.mean, torch.Tensor.mean, torch.amax, torch.Tensor.amax}


class _PoolSpy(torch.overrides.TorchFunctionMode):
    """Remembers the input of the last global pooling of a forward: ``(C, h, w)``, or ``(C, T)`` for pooled tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.last: tuple[int, ...] | None = None

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        x = args[0] if args else kwargs.get("input")
        if isinstance(x, torch.Tensor) and isinstance(out, torch.Tensor):
            with torch._C.DisableTorchFunction():
                self._see(func, x, out, args, kwargs)
        return out

    def _see(self, func: Any, x: torch.Tensor, out: torch.Tensor, args: Any, kwargs: Any) -> None:
        if func in _POOLS and x.dim() == 4 and out.shape[-2:] == (1, 1):
            self.last = (int(x.shape[1]), int(x.shape[2]), int(x.shape[3]))
        elif func in _MEANS:
            dim = args[1] if len(args) > 1 else kwargs.get("dim")
            dims = tuple(sorted(d % x.dim() for d in (dim if isinstance(dim, (tuple, list)) else (dim,)))) if dim is not None else None
            if x.dim() == 4 and dims == (2, 3):
                self.last = (int(x.shape[1]), int(x.shape[2]), int(x.shape[3]))
            elif x.dim() == 4 and dims == (1, 2):
                self.last = (int(x.shape[3]), int(x.shape[1]), int(x.shape[2]))
            elif x.dim() == 3 and dims == (1,):
                self.last = (int(x.shape[2]), int(x.shape[1]))


def pooled_features(model: nn.Module, x: torch.Tensor) -> tuple[int, ...] | None:
    """What the classifier's global pooling reads, found without the engine: ``(C, h, w)``, ``(C, T)`` or None.

    The input of the last global average / max pooling of the forward (``adaptive_*_pool2d`` to
    1 x 1, a mean or max over the spatial axes of a 4-D tensor, NCHW or NHWC, or over the tokens
    of a 3-D one). None for models that pool no grid (a class token, a flattened 7 x 7 grid).
    """
    spy = _PoolSpy()
    with torch.no_grad(), spy:
        model(x)
    return spy.last


# ------------------------------------------------------------------------- (c) coincidences
def borders(cells: list[int], sizes: list[int], stride: int) -> tuple[int, int] | None:
    """The offsets ``K`` (an interval) with ``cells[i] == floor((sizes[i] + K) / stride)`` for every ``i``, or None.

    A chain of convolutions and poolings (any kernel, padding, ``ceil_mode`` or TF "same"
    padding) maps an input axis of ``x`` pixels to ``floor((x + K) / S)`` cells for one integer
    ``K`` and the product ``S`` of the strides: ``floor((x + a) / s)`` is the form of each layer
    (``ceil((x - k) / s) + 1`` too), and ``floor((floor((x + a) / s1) + b) / s2) = floor((x + a + b s1) / (s1 s2))``.
    No layer pads more than "same" (``2 p <= k - 1``, ``ceil_mode`` pools with ``k >= s``), so
    ``K <= S - 1`` (by induction: ``a + b s1 <= s1 - 1 + (s2 - 1) s1``); unpadded layers eat a
    border, ``K < 0`` (SqueezeNet's 7 x 7 stride-2 stem: 13 cells at 32 px, 37 at 80: ``S = 2, K = -5``).
    """
    lo = max(n * stride - x for n, x in zip(cells, sizes))
    hi = min([(n + 1) * stride - x - 1 for n, x in zip(cells, sizes)] + [stride - 1])
    return (lo, hi) if lo <= hi else None


def grid_strides(grids: list[tuple[int, int]], sizes: list[Size], near: bool = False) -> set[int]:
    """The strides ``S`` with which the ``(h, w)`` grids at the input sizes ``(H, W)`` are one grid (:func:`borders`).

    Every model of the sweep strides H and W alike, so both axes share ``S`` (each its own
    ``K``). ``near``: only a border ``-S <= K`` (a grid nearly proportional to the input, as
    padded layers give). An axis that does not grow with the input (a window's pixels, a head
    count, a window count) has no stride; a ``T x T`` attention map on an H x W input whose
    H and W grow by different amounts has none either. Two sizes fit many ``(S, K)`` with a
    wide border: :func:`coincidences` asks a third size then (``T = h w`` grows quadratically).
    """
    hs, ws = [g[0] for g in grids], [g[1] for g in grids]
    if min(hs + ws) < 1:
        return set()
    out = set()
    for stride in range(1, max(max(sz) for sz in sizes) + 1):
        kh, kw = borders(hs, [sz[0] for sz in sizes], stride), borders(ws, [sz[1] for sz in sizes], stride)
        if kh is None or kw is None:
            continue
        if near and not (kh[1] >= -stride and kw[1] >= -stride):
            continue
        out.add(stride)
    return out


def third_size(size_a: Size, size_b: Size) -> Size:
    """The third input size of the coincidence check: as far beyond ``size_b`` as ``size_b`` is beyond ``size_a``."""
    return (2 * size_b[0] - size_a[0], 2 * size_b[1] - size_a[1])


def coincidences(
    a: list[LayerInfo], size_a: Size, b: list[LayerInfo], size_b: Size,
    third: Callable[[], list[LayerInfo]] | None = None,
) -> list[str]:
    """Layers reported spatial at one input size whose structure the twin size contradicts.

    Parameters
    ----------
    a, b
        ``sw.layers`` of the same architecture at input sizes ``size_a`` and ``size_b``
        (``(H, W)``, every one of H, W distinct between them).
    third
        ``sw.layers`` at :func:`third_size` (called once, only when a grid fits the two sizes
        with a wide border alone: an unpadded network, or a coincidence).

    Returns
    -------
    list of str
        One line per contradicted layer: not spatial (or another layout) at the twin size,
        a channel count that changes with the input size, or grids that no one stride gives
        at every size (:func:`grid_strides`).
    """
    spatial = ("NCHW", "NHWC", "tokens")
    by_key_b = {i.key: i for i in b}
    keys_a = {i.key for i in a}
    size_c = third_size(size_a, size_b)
    by_key_c: dict[str, LayerInfo] | None = None
    bad = []
    for ia in a:
        ib = by_key_b.get(ia.key)
        if ia.layout not in spatial and (ib is None or ib.layout not in spatial):
            continue
        if ib is None:
            bad.append(f"{ia.key}: {ia.layout} {ia.raw_shape} at {size_a}, did not run at {size_b}")
            continue
        if ia.layout != ib.layout or ia.prefix_tokens != ib.prefix_tokens:
            bad.append(f"{ia.key}: {ia.layout} {ia.raw_shape} at {size_a} but {ib.layout} {ib.raw_shape} at {size_b}")
            continue
        (ca, ha, wa), (cb, hb, wb) = ia.shape, ib.shape
        if (ha, wa) == (hb, wb) and (ia.type.startswith("Adaptive") or (ha, wa) == (1, 1)):
            continue  # adaptive or global pooling (and what follows it, e.g. squeeze-excitation): a grid of its own size
        if ca != cb:
            bad.append(f"{ia.key}: {ia.layout} with {ca} channels at {size_a} but {cb} at {size_b} (raw {ia.raw_shape}, {ib.raw_shape})")
            continue
        grids, sizes = [(ha, wa), (hb, wb)], [size_a, size_b]
        if grid_strides(grids, sizes, near=True):
            continue
        where = f"{ia.key}: {ia.layout} grid {ha}x{wa} at {size_a}, {hb}x{wb} at {size_b}"
        if not grid_strides(grids, sizes):
            bad.append(f"{where}: no one stride gives both")
            continue
        if by_key_c is None:
            by_key_c = {i.key: i for i in third()} if third is not None else {}
        ic = by_key_c.get(ia.key)
        if ic is None or ic.layout != ia.layout:
            bad.append(f"{where}: fits only with a wide border, and is {'absent' if ic is None else ic.layout} at {size_c}")
        elif ic.shape[0] != ca or not grid_strides([*grids, (ic.shape[1], ic.shape[2])], [*sizes, size_c]):
            bad.append(f"{where}, {ic.shape[1]}x{ic.shape[2]} at {size_c}: no one stride gives all three")
    bad += [f"{ib.key}: {ib.layout} {ib.raw_shape} at {size_b}, did not run at {size_a}" for ib in b if ib.key not in keys_a and ib.layout in spatial]
    return bad


# ------------------------------------------------------------------------- (d) widget
def widget_outcome(explorer: Any, method: str) -> str | None:
    """Select ``method`` in a headless explorer; None if it rendered or said why in one line, else what went wrong."""
    explorer.method = method
    if not explorer.wait(600):
        return "no render within 600 s"
    rec = explorer.render_log[-1]
    if rec.state.get("method") != method:
        return f"the last render is of {rec.state.get('method')!r}"
    if rec.error is not None:
        return f"render error: {rec.error}"
    if explorer.status.startswith(("error", "unexpected")):
        return f"status: {explorer.status}"
    msg = explorer.messages.get("map")
    if rec.nonblank.get("map"):
        return None
    if msg and "\n" not in msg.strip():
        return None
    return f"blank map without a one-line reason (message {msg!r})"


# ------------------------------------------------------------------------- the table
@dataclass
class Row:
    """One family's line of the summary table."""

    family: str
    source: str
    size: Size
    layouts: dict[str, int]
    default: str
    default_shape: str
    methods: str
    outcomes: dict[str, str] = field(default_factory=dict)


ROWS: dict[str, Row] = {}


def table_row(case: Case, source: str, ex: sw.Explainer) -> Row:
    """The summary line of a family from its Explainer (layers by layout, default layer, methods available)."""
    counts: dict[str, int] = {}
    for info in ex.layers:
        counts[info.layout] = counts.get(info.layout, 0) + 1
    try:
        default = default_cam_layer(ex)
        info = next(i for i in ex.layers if i.key == default)
        shape = f"{info.layout} {'x'.join(map(str, info.shape))}"
    except sw.SaliencyError as err:
        default, shape = f"(none: {type(err).__name__})", ""
    names = available_methods()
    missing = [get_method(m).label for m in names if ex.unavailable(m) is not None]
    methods = f"{len(names) - len(missing)}/{len(names)}" + (f" (not {', '.join(missing)})" if missing else "")
    row = Row(case.name, source, case.size, counts, default, shape, methods)
    old = ROWS.get(f"{source}:{case.name}")
    if old is not None:  # built again by another module (the widget's): one line, every outcome
        row.outcomes = old.outcomes
    ROWS[f"{source}:{case.name}"] = row
    return row


def format_table(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| family | input | layers by layout | default Grad-CAM layer | methods available | checks |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lay = ", ".join(f"{k} {v}" for k, v in sorted(r.layouts.items(), key=lambda kv: -kv[1]))
        checks = " ".join(f"{k}:{v}" for k, v in sorted(r.outcomes.items())) or "-"
        lines.append(
            f"| {r.source} {r.family} | {r.size[0]}x{r.size[1]} | {lay} | `{r.default}` ({r.default_shape}) | {r.methods} | {checks} |"
        )
    return "\n".join(lines)


def finite_positive(t: torch.Tensor) -> bool:
    """True when ``t`` is finite everywhere and has more than one value with a positive maximum."""
    return bool(torch.isfinite(t).all()) and float(t.max()) > 0 and not math.isclose(float(t.max()), float(t.min()))
