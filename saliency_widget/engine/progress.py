"""Progress of batched work, and cooperative cancellation between batches.

Occlusion, SmoothGrad and Integrated Gradients run the model on many modified inputs, a
batch at a time. Between two batches they call :func:`report` with how many inputs are
done; a caller that wants to watch (or stop) that work wraps it in :func:`reporting`::

    def show(done: int, total: int) -> None:
        bar.value = done / total
        if newer_request_waits():
            raise Cancelled("superseded")  # stops the method before its next batch

    with reporting(show):
        explainer.saliency(method="occlusion")

The callback is held in a :class:`contextvars.ContextVar`, so it belongs to the thread (or
task) that installed it and no method signature has to carry it. Without a callback
:func:`report` costs one lookup. A callback may raise :class:`~saliency_widget.errors.Cancelled`
(or any error): the method stops before its next batch, and every context it entered
(eval mode, ReLU interception) is undone on the way out, so the model is left unchanged.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

from ..errors import Cancelled

__all__ = ["Cancelled", "Progress", "report", "reporting"]

#: ``progress(done, total)``: ``done`` of ``total`` inputs (or steps) evaluated so far.
Progress = Callable[[int, int], None]

_callback: contextvars.ContextVar[Progress | None] = contextvars.ContextVar("saliency_progress", default=None)


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


def report(done: int, total: int) -> None:
    """Say that ``done`` of ``total`` inputs are evaluated; called between batches by the engine.

    Raises
    ------
    Cancelled
        Whatever the installed callback raises (it decides to stop the work).
    """
    cb = _callback.get()
    if cb is not None:
        cb(int(done), int(total))
