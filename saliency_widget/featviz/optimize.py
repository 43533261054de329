"""The optimisation loop: a batch of images, one per objective, by gradient ascent.

:func:`render` is the engine-level entry point; it takes the model's preprocessing as a
function on ``(N, 3, H, W)`` tensors in [0, 1]. :func:`saliency_widget.visualize` finds that
preprocessing from the model (``weights=``, a Hugging Face processor, timm's config, the
bundled model) and calls it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..engine.checks import check_model, eval_mode, gradients_disabled, model_device_dtype
from ..engine.outputs import logits_of
from ..engine.progress import Progress, report, reporting
from ..errors import InputError, ModelError
from .objectives import Objective, as_objectives
from .params import PARAMS, logit, make_param
from .readout import LayerReader
from .result import Visualization
from .transforms import resolve_transform

__all__ = ["DEFAULT_LR", "OPTIMIZERS", "render"]

OPTIMIZERS = ("adam", "sgd")
DEFAULT_LR: dict[tuple[str, str], float] = {
    ("adam", "pixel"): 0.05,
    ("adam", "fourier"): 0.05,  # Lucid / Lucent's Adam(5e-2)
    ("adam", "maco"): 0.1,
    ("sgd", "pixel"): 1.0,
    ("sgd", "fourier"): 1.0,
    ("sgd", "maco"): 1.0,
}
"""Default learning rate per ``(optimizer, param)``."""

Preprocess = Callable[[torch.Tensor], torch.Tensor]


def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name}={value!r} is not valid: expected an int >= {minimum}")
    return int(value)


def _size(size: Any) -> tuple[int, int]:
    if isinstance(size, (tuple, list)) and len(size) == 2:
        return (_positive_int(size[0], "size", 2), _positive_int(size[1], "size", 2))
    s = _positive_int(size, "size", 2)
    return (s, s)


def _init_images(init: Any, n: int, size: tuple[int, int] | None) -> torch.Tensor:
    """``init`` as ``(n, 3, H, W)`` float64 in [0, 1] (one image is used for every objective)."""
    t = init
    if isinstance(t, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(t))
        if t.dim() in (3, 4) and t.shape[-1] == 3 and t.shape[-3] != 3:  # (H, W, 3) arrays
            t = t.movedim(-1, -3)
    if not isinstance(t, torch.Tensor) or t.dim() not in (3, 4) or t.shape[-3] != 3:
        raise InputError(
            f"init must be None, 'noise', or RGB images in [0, 1] of shape (3, H, W) or (N, 3, H, W) "
            f"(uint8 0..255 also accepted); got {type(init).__name__} {tuple(getattr(init, 'shape', ()))}"
        )
    t = t.detach().cpu()
    t = t.double() / 255.0 if t.dtype == torch.uint8 else t.double()
    if t.dim() == 3:
        t = t.unsqueeze(0)
    if t.shape[0] not in (1, n):
        raise InputError(f"init has {t.shape[0]} images but there are {n} objectives; give one image, or one per objective")
    if not bool(torch.isfinite(t).all()) or float(t.min()) < 0.0 or float(t.max()) > 1.0:
        raise InputError(
            f"init images must be RGB in [0, 1] before the model's preprocessing; got values in "
            f"[{float(t.min()):.3g}, {float(t.max()):.3g}] (undo the normalisation first)"
        )
    if size is not None and tuple(t.shape[-2:]) != size:
        raise InputError(
            f"the init image is {t.shape[-2]}x{t.shape[-1]} but size={size[0]}x{size[1]}; "
            f"resize it to {size[0]}x{size[1]} or pass size=({t.shape[-2]}, {t.shape[-1]})"
        )
    return t.expand(n, -1, -1, -1)


def _stop_classes(objs: Sequence[Objective], reader: LayerReader) -> list[int]:
    out = []
    for i, o in enumerate(objs):
        if len(o.classes) != 1:
            raise InputError(
                f"stop_at_probability stops each image when the model gives its class that probability, so each "
                f"objective needs exactly one class_logit term; objective {i} ({o.name}) has {len(o.classes)}"
            )
        out.append(reader.class_index(o.classes[0]))
    return out


def render(
    model: nn.Module,
    objectives: Objective | Sequence[Objective],
    *,
    preprocess: Preprocess | None = None,
    labels: Sequence[str] | None = None,
    steps: int = 256,
    size: int | tuple[int, int] | None = None,
    param: str = "fourier",
    transforms: Any = "standard",
    lr: float | None = None,
    optimizer: str = "adam",
    seed: int = 0,
    init: Any = None,
    batch_size: int | None = None,
    progress: Progress | None = None,
    stop_at_probability: float | None = None,
    max_change: float | None = None,
    redirect_relu: bool = True,
) -> Visualization:
    """Optimise one image per objective, all objectives as one batch.

    Parameters
    ----------
    model
        The network; run in eval mode, never modified (weights, ``training``, ``requires_grad``,
        ``.grad``, hooks: every hook lives inside one forward pass).
    objectives
        One :class:`~saliency_widget.featviz.objectives.Objective` or a list (one image each).
    preprocess
        ``(N, 3, H, W)`` RGB in [0, 1] -> model input, differentiable (e.g. mean/std
        normalisation); None: the images are the inputs.
    labels
        Class names, for ``class_logit("name")``.
    steps
        Optimisation steps (>= 1).
    size
        Image side, or ``(H, W)``; None: the ``init`` image's size, else 224.
    param
        ``"pixel"``, ``"fourier"`` (decorrelated colour) or ``"maco"``.
    transforms
        ``"standard"`` (jitter, scale, rotate, grey padding), None, a callable ``images ->
        images`` or a list of them (their randomness comes from the seeded run).
    lr
        Learning rate; None: :data:`DEFAULT_LR`.
    optimizer
        ``"adam"`` or ``"sgd"`` (plain gradient ascent ``p += lr * grad``).
    seed
        Seeds the start images and the transformations; a run repeats exactly on the CPU. The
        global RNG is left as it was.
    init
        None (Lucid's start near grey; MACO: random phase), ``"noise"`` (uniform noise images),
        or RGB images in [0, 1], ``(3, H, W)`` or ``(N, 3, H, W)``: the run starts exactly there.
    batch_size
        Images per optimisation batch; None: all at once.
    progress
        ``progress(done, total)`` after each step (may raise
        :class:`~saliency_widget.errors.Cancelled`); None: the caller's
        :func:`~saliency_widget.engine.progress.reporting`, if any.
    stop_at_probability
        Stop each image (keep it as it is) once the model gives its objective's class (its one
        ``class_logit`` term) at least this softmax probability, on the untransformed image.
    max_change
        With ``param="pixel"``: keep every pixel within this distance of ``init`` (an L-infinity
        budget, for "disguised" fooling images).
    redirect_relu
        Lucid's redirected ReLU gradient: an image whose units are all off still gets a signal
        (see :mod:`saliency_widget.featviz.redirect`).

    Returns
    -------
    Visualization
    """
    model = check_model(model)
    objs = as_objectives(objectives)
    n_all = len(objs)
    steps = _positive_int(steps, "steps")
    if param not in PARAMS:
        raise InputError(f"unknown parametrisation param={param!r}; expected one of {', '.join(map(repr, PARAMS))}")
    if optimizer not in OPTIMIZERS:
        raise InputError(f"unknown optimizer={optimizer!r}; expected one of {', '.join(map(repr, OPTIMIZERS))}")
    lr = DEFAULT_LR[(optimizer, param)] if lr is None else lr
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise InputError(f"lr={lr!r} is not valid: expected a number > 0")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed={seed!r} is not valid: expected an int >= 0")
    chunk = n_all if batch_size is None else _positive_int(batch_size, "batch_size")
    if stop_at_probability is not None and not (isinstance(stop_at_probability, (int, float)) and 0 < stop_at_probability < 1):
        raise InputError(f"stop_at_probability={stop_at_probability!r} is not valid: expected a probability strictly between 0 and 1")
    if preprocess is not None and not callable(preprocess):
        raise InputError(f"preprocess must be a callable on (N, 3, H, W) tensors, got {type(preprocess).__name__}")
    transform = resolve_transform(transforms)
    hw = None if size is None else _size(size)
    noise = isinstance(init, str) and init == "noise"
    if isinstance(init, str) and not noise:
        raise InputError(f"unknown init={init!r}; expected None, 'noise', or RGB images in [0, 1]")
    init_t = None if init is None or noise else _init_images(init, n_all, hw)
    if hw is None:
        hw = tuple(init_t.shape[-2:]) if init_t is not None else (224, 224)  # type: ignore[assignment]
    assert hw is not None  # for mypy: set just above
    if max_change is not None:
        if param != "pixel" or init is None:
            raise InputError(f"max_change={max_change!r} keeps pixels near init, so it needs param='pixel' and an init image (got param={param!r}, init={'None' if init is None else 'given'})")
        if isinstance(max_change, bool) or not isinstance(max_change, (int, float)) or not max_change > 0:
            raise InputError(f"max_change={max_change!r} is not valid: expected a number > 0 (in [0, 1] pixel units)")
    device, dtype = model_device_dtype(model)
    device = device or torch.device("cpu")
    dtype = dtype or torch.float32
    if device.type == "meta":
        raise ModelError("the model's parameters are on the 'meta' device (no weights), so it cannot be run")
    pre: Preprocess = preprocess if preprocess is not None else (lambda x: x)

    reader = LayerReader(model, [k for o in objs for k in o.layers], any(o.uses_logits for o in objs), pre, labels, redirect_relu)
    reader.bind(hw, device, dtype)
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    watch = reporting(progress) if progress is not None else contextlib.nullcontext()
    chunks = [list(range(i, min(i + chunk, n_all))) for i in range(0, n_all, chunk)]
    total = steps * len(chunks)
    with eval_mode(model), torch.random.fork_rng(devices=cuda), watch:
        torch.manual_seed(seed)
        probe = reader.probe(torch.full((1, 3, *hw), 0.5, device=device, dtype=dtype))
        for o in objs:
            for check in o.checks:
                check(reader.shapes, reader.num_classes)
            with torch.no_grad():
                o(probe)  # names, references and sizes fail here, before any optimisation
        stop_classes = _stop_classes(objs, reader) if stop_at_probability is not None else None
        parts = []
        for ci, idx in enumerate(chunks):
            gens = [torch.Generator().manual_seed(seed * 1_000_003 + i) for i in idx]
            start = init_t[idx] if init_t is not None else (torch.stack([torch.rand((3, *hw), generator=g, dtype=torch.float64) for g in gens]) if noise else None)
            parts.append(
                _optimise(
                    reader, [objs[i] for i in idx], gens, param, hw, device, dtype, start, transform, optimizer, float(lr), steps,
                    None if stop_classes is None else [stop_classes[i] for i in idx], stop_at_probability, max_change, ci * steps, total,
                )
            )  # fmt: skip
        images = torch.cat([p[0] for p in parts])
        with torch.no_grad():
            x = pre(images.to(device, dtype))
            final = reader.read(images.to(device, dtype), x)
            values = torch.cat([o(final.rows(i)) for i, o in enumerate(objs)])
            try:
                probs: torch.Tensor | None = torch.softmax(logits_of(model(x)).float(), dim=1).cpu()
            except ModelError:
                probs = None
    start_all = None
    if init_t is not None:
        start_all = init_t.float().clone()
    elif noise:
        start_all = torch.cat([p[3] for p in parts if p[3] is not None]).float()
    return Visualization(
        images=images.float(), inputs=x.detach().float().cpu(), values=values.detach().float().cpu(),
        history=torch.cat([p[1] for p in parts], dim=1), names=[o.name for o in objs], probabilities=probs,
        steps=torch.cat([p[2] for p in parts]), init=start_all, param=param, seed=int(seed),
    )  # fmt: skip


def _optimise(
    reader: LayerReader,
    objs: list[Objective],
    gens: list[torch.Generator],
    param: str,
    hw: tuple[int, int],
    device: torch.device,
    dtype: torch.dtype,
    start: torch.Tensor | None,
    transform: Any,
    optimizer: str,
    lr: float,
    steps: int,
    stop_classes: list[int] | None,
    stop_p: float | None,
    max_change: float | None,
    done0: int,
    total: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One batch: images ``(n, 3, H, W)`` (CPU), history ``(steps_run, n)``, steps ``(n,)``, start images."""
    n = len(objs)
    p = make_param(param, n, hw, gens, device, dtype, start)
    opt = torch.optim.Adam(p.tensors, lr=lr) if optimizer == "adam" else torch.optim.SGD(p.tensors, lr=lr)
    bounds = None
    if max_change is not None and start is not None:
        bounds = (logit((start - max_change).clamp(0, 1)).to(device, dtype), logit((start + max_change).clamp(0, 1)).to(device, dtype))
    frozen = torch.zeros(n, dtype=torch.bool, device=device)
    ran = torch.full((n,), steps, dtype=torch.long)
    saved = [t.detach().clone() for t in p.tensors]
    history = []
    for t in range(steps):
        img = p.image()
        x = transform(img, gens) if transform is not None else img
        step = reader.read(img, reader.preprocess(x))
        vals = torch.cat([o(step.rows(j)) for j, o in enumerate(objs)])
        if stop_classes is not None and stop_p is not None:
            with torch.no_grad():
                logits = step.logits() if transform is None else reader.read(img, reader.preprocess(img)).logits()
                prob = torch.softmax(logits.float(), dim=1)[torch.arange(n, device=device), torch.tensor(stop_classes, device=device)]
            newly = (prob >= stop_p) & ~frozen
            if bool(newly.any()):
                for s, cur in zip(saved, p.tensors):
                    s[newly] = cur.detach()[newly]
                frozen |= newly
                ran[newly.cpu()] = t
        history.append(vals.detach().float().cpu())
        if bool(frozen.all()):
            break
        loss = -(vals * (~frozen).to(vals.dtype)).sum()
        if not loss.requires_grad:
            why = gradients_disabled(loss, img)
            raise ModelError(why or "the objectives do not depend on the image (nothing to optimise)")
        grads = torch.autograd.grad(loss, p.tensors, allow_unused=True)
        for tensor, g in zip(p.tensors, grads):
            tensor.grad = g if g is not None else torch.zeros_like(tensor)
        opt.step()
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            if bool(frozen.any()):
                for s, cur in zip(saved, p.tensors):
                    cur[frozen] = s[frozen]
            if bounds is not None:
                p.tensors[0].copy_(torch.maximum(torch.minimum(p.tensors[0], bounds[1]), bounds[0]))
        report(done0 + t + 1, total)
    if len(history) < steps:  # every image reached stop_at_probability early
        report(done0 + steps, total)
    with torch.no_grad():
        images = p.image().detach().float().cpu()
    return images, torch.stack(history), ran, start
