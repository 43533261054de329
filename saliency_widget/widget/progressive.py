"""The map panel while a batched map computes: progress in the map's own title line, partial maps drawn in place.

Occlusion, SmoothGrad and Integrated Gradients take seconds on a real model on a CPU. The
explorer computes on a background thread, so the notebook's kernel is free (Jupyter's
indicator rightly says "Idle": other cells run meanwhile). What is being computed is therefore
said where the user looks, in the map's title line: the *new* method's name, "computing in
the background" and the fraction done; and each partial map the engine sends
(:func:`~saliency_widget.engine.progress.previewing`: occlusion coarse to fine, the running
averages of SmoothGrad and IG) replaces the dimmed old map, as the same raw-map binary as a
final map (:meth:`~.mapcanvas.MapCanvas.show_map` with its fraction), at most every
``maps_every`` seconds. The final map, drawn by the explorer's usual path, is the one-shot map.
"""

from __future__ import annotations

import html
import threading
import time
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..engine import method_label
from ..views.rawmap import RawMap
from .view import two_lines

if TYPE_CHECKING:  # pragma: no cover
    from .view import ExplorerView

__all__ = ["MapProgress", "busy_title"]


def busy_title(method: str, fraction: float | None = None, partial: bool = False) -> tuple[str, str]:
    """The map's title line while ``method`` computes: ``(html, plain text)``.

    Examples
    --------
    >>> busy_title("occlusion", 0.37, partial=True)[1]
    'Occlusion: partial map, 37% done · computing in the background (the kernel stays free)'
    """
    label = method_label(method)
    done = "" if fraction is None else f"{int(100 * fraction)}% done"
    what = f"partial map, {done}" if partial else (f"computing, {done}" if done else "computing …")
    plain = f"{label}: {what} · computing in the background (the kernel stays free)"
    inner = (f"<b>{html.escape(label)}</b> <span class='sw-detail'>{html.escape(what)}"
             " · computing in the background (the kernel stays free)</span>")
    return inner, plain


class MapProgress:
    """Progress of the map being computed, shown on the explorer's view (the progress bar, the map's title, partial maps).

    Parameters
    ----------
    ui
        The explorer's view: its ``w_map`` (a :class:`~.mapcanvas.MapCanvas`), ``w_map_title``
        and progress bar.
    maps_every
        Seconds between two partial maps sent to the browser (the first is sent at once).
    """

    def __init__(self, ui: ExplorerView, maps_every: float = 0.25) -> None:
        self.ui = ui
        self.maps_every = maps_every
        self.method = ""
        #: Partial maps sent to the browser since the explorer started (for tests and the render log).
        self.partials = 0
        self._shown_at = 0.0
        self._map_at = 0.0
        self._fraction: float | None = None
        self._lock = threading.Lock()

    def begin(self, method: str) -> None:
        """A new view of ``method`` starts computing (its busy state is already shown)."""
        with self._lock:
            self.method, self._shown_at, self._map_at, self._fraction = method, 0.0, 0.0, None

    def batches(self, done: int, total: int, step: tuple[int, int], every: float) -> None:
        """Between two batches of the map: the progress bar and the title's fraction, at most every ``every`` s.

        ``step`` is ``(method, methods)`` of the compare view (``(0, 0)`` for a single map).
        """
        now = time.monotonic()
        if now - self._shown_at < every or total <= 0:
            return
        self._shown_at = now
        i, steps = step
        if steps:  # compare view: the method's share of the whole
            self.ui.show_fraction((i + done / total) / steps, f"{i}/{steps}")
            return
        self.ui.show_fraction(done / total, f"{100 * done // total}%")
        if self._fraction is None:  # no partial map yet: the title says how far the computation is
            self._title(done / total, partial=False)

    def partial(self, method: str, fraction: float, raw: RawMap, base: NDArray[np.uint8]) -> None:
        """Draw a partial map of ``method`` (``fraction`` done) in place of the dimmed old map."""
        now = time.monotonic()
        with self._lock:
            if method != self.method or (self._fraction is not None and now - self._map_at < self.maps_every):
                return
            self._map_at, self._fraction = now, fraction
            self.partials += 1
        canvas = self.ui.w_map
        canvas.show_map(raw, base, fraction=fraction)
        if "sw-busy" in canvas._dom_classes:  # a partial map is the news: not dimmed like the old one
            canvas.remove_class("sw-busy")
        self._title(fraction, partial=True)
        self.ui.w_map_msg.value = ""

    def _title(self, fraction: float, partial: bool) -> None:
        inner, plain = busy_title(self.method, fraction, partial)
        self.ui.w_map_title.value = two_lines(inner, plain)
