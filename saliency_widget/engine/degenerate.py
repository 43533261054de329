"""The one check that a map is usable: warn once when it holds NaN / Inf, only zeros, or one value everywhere.

On the CPU the two flags are read at once. On a GPU reading them would stall the host until the
map is done, a synchronisation in every map request (the widget's hot path): there the flags are
copied to pinned host memory without waiting, and read once the copy has landed, at a later
check (the next map of any Explainer), by polling a CUDA event. The warning may then come one
request late; the map itself is never delayed.
"""

from __future__ import annotations

import math
import threading
from collections import deque

import torch

from ..errors import DegenerateMapWarning, warn_once

__all__ = ["check_degenerate", "flush_degenerate"]

# (event, pinned host flags, what, number of values) of GPU checks whose flags are still on their way
_PENDING: deque[tuple[torch.cuda.Event, torch.Tensor, str, int]] = deque(maxlen=256)
_LOCK = threading.Lock()


def _warn_range(low: float, high: float, what: str, size: int) -> None:
    """Warn from a map's ``(min, max)`` (``size``: its number of values)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        warn_once(("nonfinite", what), f"{what}: the map contains NaN or Inf values", DegenerateMapWarning)
    elif low == 0 and high == 0:
        warn_once(("allzero", what), f"{what}: the map is all zeros", DegenerateMapWarning)
    elif low == high and size > 1:
        # e.g. occlusion on a model whose output no patch moves more than another: drawn, it is one flat colour
        warn_once(("constant", what), f"{what}: the map has one value everywhere ({low:.3g}): nothing stands out", DegenerateMapWarning)


def _poll(block: bool) -> None:
    """Warn for the GPU checks whose flags have arrived (all of them with ``block``)."""
    while True:
        with _LOCK:
            if not _PENDING or not (block or _PENDING[0][0].query()):
                return
            event, flags, what, size = _PENDING.popleft()
        if block:
            event.synchronize()
        low, high = flags.tolist()
        _warn_range(low, high, what, size)


def check_degenerate(out: torch.Tensor, what: str) -> None:
    """Warn once (:class:`~saliency_widget.errors.DegenerateMapWarning`) if ``out`` is non-finite, all zero or constant.

    Parameters
    ----------
    out
        A map of any shape, on any device.
    what
        The method's name, for the message.
    """
    _poll(block=False)
    if out.numel() == 0:
        return
    # one pass over the map (not three: isfinite, all, any): NaN propagates to both, an Inf
    # shows in one of them, and the map is all zero exactly when both are zero
    flags = torch.stack(torch.aminmax(out.detach()))
    if out.device.type != "cuda":
        low, high = flags.tolist()
        _warn_range(low, high, what, out.numel())
        return
    host = flags.to("cpu", non_blocking=True)  # pinned: the copy is queued, not waited for
    event = torch.cuda.Event()
    event.record(torch.cuda.current_stream(out.device))
    with _LOCK:
        _PENDING.append((event, host, what, out.numel()))


def flush_degenerate() -> None:
    """Wait for the GPU checks still in flight and give their warnings (tests, end of a batch)."""
    _poll(block=True)
