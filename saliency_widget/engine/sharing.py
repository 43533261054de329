"""One model, many sessions: what the engine shares on a model, and how sessions stay apart.

Any number of :class:`~saliency_widget.engine.session.Explainer` s (two explorers in one
notebook, several threads of a server) may use one model object at the same time, and each
gets exactly what it would get alone. Three things live on the shared model while the engine
works, and each is kept per session here:

``training`` flags
    Every forward runs in eval mode. :func:`eval_mode` counts the sessions inside it per model:
    the first one in saves the flags and switches the model to eval, the last one out puts the
    saved flags back. Without the count, a session that left while another still ran would
    switch BatchNorm back to batch statistics under it, and the model could end in eval mode.
Recording hooks
    A :class:`~saliency_widget.engine.capture.LayerCapture` puts forward hooks on the modules;
    they belong to the thread that installed them (:class:`ThreadOwned`) and do nothing during
    another thread's forward, so one session never records another's layers.
TorchFunctionModes
    The ReLU interceptor and the layout tracker are modes, and PyTorch keeps the mode stack per
    thread: nothing to do.

The user's own hooks run as usual (ours are added after them, so we record what the model
returns), and on every exit path, exceptions included, the model is exactly as it was.

A forward the user runs *outside* the engine, in another thread, while a session is inside
:func:`eval_mode` sees the model in eval mode: the flags are one per module, not per thread.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from torch import nn

from .walk import submodules

__all__ = ["ThreadOwned", "eval_mode", "sessions_in_eval"]


class _EvalState:
    """Sessions inside :func:`eval_mode` on one model, and the flags the first one saved."""

    __slots__ = ("depth", "training")

    def __init__(self, training: list[nn.Module]) -> None:
        self.depth = 0
        self.training = training


_lock = threading.Lock()
# By id(model), only while a session is inside (the model is then alive): no hashing of the
# user's module (a dataclass module has no __hash__), no weak references.
_states: dict[int, _EvalState] = {}


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Run in eval mode and give every submodule its own previous ``training`` flag back.

    Reentrant and shared between threads: the flags are saved by the first session to enter on
    ``model`` and restored by the last one to leave (see the module docstring).
    """
    key = id(model)
    with _lock:
        state = _states.get(key)
        if state is None:
            # only the modules in training mode are switched (and switched back): usually none
            # are, and model.eval() on every map request is measurable on small models
            state = _states[key] = _EvalState([m for m in submodules(model) if m.training])
            for m in state.training:
                m.training = False
        state.depth += 1
    try:
        yield
    finally:
        with _lock:
            state.depth -= 1
            if state.depth == 0:
                del _states[key]
                for m in state.training:
                    m.training = True


def sessions_in_eval(model: nn.Module) -> int:
    """How many :func:`eval_mode` blocks (all threads) are open on ``model`` now."""
    with _lock:
        state = _states.get(id(model))
        return 0 if state is None else state.depth


class ThreadOwned:
    """Base of the engine's hooks on a shared model: active only in the thread that made them.

    Subclasses implement :meth:`run`; a call from another thread (another session's forward)
    returns None at once, as if the hook were not there.

    Attributes
    ----------
    owner : int
        ``threading.get_ident()`` of the thread the hook belongs to.
    """

    __slots__ = ("owner",)

    def __init__(self) -> None:
        self.owner = threading.get_ident()

    def __call__(self, *args: object) -> object:
        """Run the hook if called from its owner thread; else do nothing (return None)."""
        if threading.get_ident() != self.owner:
            return None
        return self.run(*args)

    def run(self, *args: object) -> object:  # pragma: no cover - abstract
        """The hook's work, in its owner thread."""
        raise NotImplementedError
