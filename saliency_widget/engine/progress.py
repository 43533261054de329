"""Progress of batched work, and cooperative cancellation between batches: the one protocol.

Everything long runs a batch at a time and calls :func:`report` between two batches with
how much is done: the maps (occlusion, SmoothGrad, Integrated Gradients), faithfulness
(:func:`~saliency_widget.analysis.deletion_insertion`), top-9 (:func:`~saliency_widget.analysis.top_activations`)
and mining (:func:`~saliency_widget.analysis.mine`). A caller that wants to watch (or stop)
that work wraps it in :func:`reporting`::

    def show(done: int, total: int) -> None:
        bar.value = done / total
        if newer_request_waits():
            raise Cancelled("superseded")  # stops the method before its next batch

    with reporting(show):
        explainer.saliency(method="occlusion")

The callback is held in a :class:`contextvars.ContextVar`, so it belongs to the thread (or
task) that installed it and no method signature has to carry it. Without a callback
:func:`report` costs one lookup. A callback may raise :class:`~saliency_widget.errors.Cancelled`
(or any error), or return False (then :func:`report` raises ``Cancelled``): the work stops
before its next batch, and every context it entered (eval mode, ReLU interception, layer
capture) is undone on the way out, so the model is left unchanged. ``total`` is 0 when the
amount of work is not known in advance (an iterable of batches without a length).

Partial maps ride on the same protocol. A caller that wants to *see* a batched map refine
installs a second callback with :func:`previewing` (or passes ``partial=`` to
:meth:`~saliency_widget.engine.Explainer.saliency`): after each batch but the last, occlusion
(coarse patch positions first, then finer ones), SmoothGrad and Integrated Gradients (the
running average of the samples done) call it as ``partial(fraction, maps)`` with the map made of
the work done so far, shaped like the final map. The final map is the method's return value,
computed by the very same code whether or not anyone watches, so it equals the one-shot result
exactly. Methods of one pass never call it.

Floor: ``engine`` (imports ``errors`` only).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ..errors import Cancelled

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["Cancelled", "Partial", "Progress", "callback", "nested", "previewer", "previewing", "report", "reporting"]

#: ``progress(done, total)``: ``done`` of ``total`` inputs (or steps) evaluated so far; False (or Cancelled) stops.
Progress = Callable[[int, int], "bool | None"]

_callback: contextvars.ContextVar[Progress | None] = contextvars.ContextVar("saliency_progress", default=None)

#: ``partial(fraction, maps)``: ``maps`` ``(N, C, H, W)`` made of the ``fraction`` (0..1) of the work done so far.
Partial = Callable[[float, "torch.Tensor"], None]

_partial: contextvars.ContextVar[Partial | None] = contextvars.ContextVar("saliency_partial", default=None)


@contextlib.contextmanager
def reporting(callback: Progress | None) -> Iterator[None]:
    """Send the batched work run inside to ``callback(done, total)`` (None: report nowhere).

    Nested uses replace the outer callback for their duration and restore it on exit,
    exceptions included.
    """
    token = _callback.set(callback)
    try:
        yield
    finally:
        _callback.reset(token)


def callback() -> Progress | None:
    """The callback installed by the innermost :func:`reporting` of this thread (None: none)."""
    return _callback.get()


def report(done: int, total: int) -> None:
    """Say that ``done`` of ``total`` inputs are evaluated; called between batches.

    Raises
    ------
    Cancelled
        The installed callback returned False, or raised it (it decides to stop the work);
        any other error the callback raises passes through as well.
    """
    cb = _callback.get()
    if cb is not None and cb(int(done), int(total)) is False:
        raise Cancelled(f"stopped after {int(done)} of {int(total)}")


def nested(done: int, total: int) -> Progress | None:
    """A callback for work nested in one step of a longer job (a map inside a pointing game).

    Install it with :func:`reporting` around the step: the step's own batches then re-report
    the outer job's ``(done, total)`` to the current callback, which can still stop them;
    their own counts never reach it. None when no callback is installed.
    """
    outer = _callback.get()
    if outer is None:
        return None

    def relay(_done: int, _total: int) -> bool | None:
        return outer(done, total)

    return relay


@contextlib.contextmanager
def previewing(partial: Partial | None) -> Iterator[None]:
    """Send the partial maps of the batched methods run inside to ``partial(fraction, maps)``.

    ``maps`` is ``(N, C, H, W)`` like the final map, on the model's device; ``fraction`` in
    (0, 1) is the share of the work done. The callback may raise (e.g.
    :class:`~saliency_widget.errors.Cancelled`) to stop the work. Nested uses replace the outer
    callback for their duration (None: no previews).
    """
    token = _partial.set(partial)
    try:
        yield
    finally:
        _partial.reset(token)


def previewer() -> Partial | None:
    """The partial-map callback of the innermost :func:`previewing` of this thread (None: nobody watches)."""
    return _partial.get()
