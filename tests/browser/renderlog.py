"""The kernel-side render log the browser tests read, waiting for an image to change, picking a cell.

The notebook under test calls ``Explorer.log_events(path)``: one JSON line per render pass.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


class Events:
    """Reads the kernel-side render log (one JSON line per render pass) written by the notebook."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def all(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def wait_for(self, pred: Any, after: int, timeout: float = 60.0, what: str = "") -> dict[str, Any]:
        """Wait for a record with seq > ``after`` satisfying ``pred`` (latest such record)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hits = [r for r in self.all() if r["seq"] > after and pred(r)]
            if hits:
                return hits[-1]
            time.sleep(0.05)
        raise AssertionError(f"no kernel-side render for {what!r}; last records: {self.all()[-3:]}")

    def last_seq(self) -> int:
        recs = self.all()
        return recs[-1]["seq"] if recs else 0


# What a panel shows now: an <img>'s src, or for a map panel drawn in the browser
# (js/map_view.js) its paint count and message, so a repaint is a change.
_SHOWN = """(cls) => {
    const el = document.querySelector('.' + cls);
    if (!el) return '';
    const img = el.tagName === 'IMG' ? el : null;
    if (img) return img.src && img.complete ? img.src : '';
    const c = el.querySelector('canvas.sw-mv-canvas');
    return c ? `paints:${c.dataset.paints || 0}:${c.dataset.options || ''}:${el.querySelector('.sw-mv-root')?.dataset.message || ''}` : '';
}"""


def img_src(page: Any, cls: str) -> str:
    """What ``.<cls>`` shows: an image's ``src``, or a map canvas's paint signature ('' if none)."""
    return str(page.evaluate(_SHOWN, cls))


def wait_src_change(page: Any, cls: str, old: str, timeout: float = 60000) -> None:
    """Wait until ``.<cls>`` shows something other than ``old`` (a loaded image, or a new paint of a map canvas)."""
    page.wait_for_function(f"([cls, old]) => {{ const s = ({_SHOWN})(cls); return s && s !== old; }}", arg=[cls, old],
                           timeout=timeout, polling="raf")


def second_brightest_cell(page: Any) -> tuple[int, int, int, int]:
    """``(grid_h, grid_w, y, x)`` of the feature map's second-brightest cell (viridis green grows with the value).

    Not the brightest: tests click it and expect a projection, and the second one is never the
    only non-zero activation.
    """
    gh, gw, cy, cx = page.evaluate(
        """() => { const c = document.querySelector('canvas.sw-fm-canvas');
                   const [gh, gw] = c.dataset.grid.split(',').map(Number);
                   const ctx = c.getContext('2d'); const cells = [];
                   for (let y = 0; y < gh; y++) for (let x = 0; x < gw; x++) {
                     const px = ctx.getImageData(Math.floor((x + 0.5) * c.width / gw), Math.floor((y + 0.5) * c.height / gh), 1, 1).data;
                     cells.push([px[1], y, x]); }
                   cells.sort((a, b) => b[0] - a[0]);
                   return [gh, gw, cells[1][1], cells[1][2]]; }"""
    )
    return int(gh), int(gw), int(cy), int(cx)
