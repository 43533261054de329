"""Exception and warning classes of saliency-widget.

Every error the package raises on purpose derives from :class:`SaliencyError`, so a
caller (and the widget's status line) can catch one family. Subclasses also derive from
the matching built-in (``ValueError``, ``KeyError``, ``TypeError``) so code written for
those keeps working.

Floor 0 of 5, the lowest: imports nothing of the package, and every other module may import it.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Hashable, Iterable

__all__ = [
    "SaliencyError",
    "InputError",
    "LayerError",
    "MethodError",
    "ModelError",
    "Cancelled",
    "SaliencyWarning",
    "NonReLUActivationWarning",
    "DegenerateMapWarning",
    "warn_once",
    "choices",
]


class SaliencyError(Exception):
    """Base class of every error raised on purpose by saliency-widget."""


class InputError(SaliencyError, ValueError):
    """An argument has the wrong value, type, shape, dtype or range."""


class LayerError(SaliencyError, KeyError):
    """A layer name or call index does not exist in the model."""

    def __str__(self) -> str:  # KeyError would repr() the message; keep it readable
        return str(self.args[0]) if self.args else ""


class MethodError(SaliencyError, ValueError):
    """An unknown attribution method, or one that cannot apply to this model."""


class ModelError(SaliencyError, TypeError):
    """The model cannot be explained as given (TorchScript, no ReLU for DeconvNet, ...)."""


class Cancelled(SaliencyError):
    """A long computation was stopped between two batches by its progress callback.

    Raised by the callback given to :func:`saliency_widget.engine.progress.reporting` (e.g.
    the widget, when a newer request no longer needs the running map); nothing is returned
    and the model is left as it was.
    """


class SaliencyWarning(UserWarning):
    """Base class of the warnings of saliency-widget."""


class NonReLUActivationWarning(SaliencyWarning):
    """DeconvNet / Guided Backprop met activations other than ReLU, which kept their gradient."""


class LRPCoverageWarning(SaliencyWarning):
    """LRP met operations that mix relevance and that no rule covers (layer norm, softmax, attention products)."""


class DegenerateMapWarning(SaliencyWarning):
    """A map is all zeros, contains NaN/Inf, or has one value everywhere (nothing stands out)."""


class OutOfDomainWarning(SaliencyWarning):
    """An input unlike anything the model was trained on (a photo given to the bundled shapes model)."""


_warned: set[Hashable] = set()
_warned_lock = threading.Lock()


def warn_once(key: Hashable, message: str, category: type[Warning] = SaliencyWarning) -> bool:
    """Issue ``message`` once per process for the condition ``key``.

    Parameters
    ----------
    key
        Identifies the condition (e.g. ``("non-relu", "guided_backprop", ("GELU",))``).
    message
        The warning text.
    category
        The warning class.

    Returns
    -------
    bool
        True if the warning was issued now, False if it had been issued before.
    """
    with _warned_lock:
        if key in _warned:
            return False
        _warned.add(key)
    warnings.warn(message, category, stacklevel=3)
    return True


def reset_warnings() -> None:
    """Forget which conditions were warned about (for tests)."""
    with _warned_lock:
        _warned.clear()


def choices(values: Iterable[object], limit: int = 40) -> str:
    """Format valid choices for an error message, shortened past ``limit`` items."""
    vals = [repr(v) for v in values]
    if len(vals) > limit:
        head = ", ".join(vals[: limit - 5])
        tail = ", ".join(vals[-5:])
        return f"{head}, ... ({len(vals) - limit} more) ..., {tail}"
    return ", ".join(vals)
