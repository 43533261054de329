"""What a saved notebook shows of an explorer: the picture of its last view.

A widget's output holds only a reference to a model that lives in the kernel, so a notebook
saved and reopened without it (or converted by nbconvert) has no widget to show: JupyterLab
writes "Error displaying widget: model not found" and nbconvert falls back to the bundle's
other types, which were computed when the cell first ran. The explorer therefore shows two
outputs:

1. the widget view (``application/vnd.jupyter.widget-view+json``, a short ``text/plain``);
2. the *saved view*: ``text/html`` (the PNG inline) and ``image/png`` of the current view,
   displayed with a ``display_id`` and replaced through ``update_display_data`` once the view
   has been still for ``Explorer.saved_idle_s`` (2 s; :meth:`Explorer.wait` does it at once), so
   the notebook file holds the last view and a burst of clicks or display changes costs one
   kernel-side picture, after the burst. JupyterLab routes those updates
   to the cell that displayed the id even when they come from the render thread.

While the widget lives, a rule in its own stylesheet hides the saved view (the live view shows
the same thing). Without the widget that rule is gone, the picture shows, and the saved view's
own rule hides the empty "model not found" line of its cell.
"""

from __future__ import annotations

import base64
import html
import json
from typing import Any

__all__ = ["SavedView", "live_css", "saved_bundle"]

#: Metadata key of the saved view: the explorer state the picture shows.
META_KEY = "saliency_widget"


def _cls(token: str) -> str:
    return f"sw-saved-{token}"


def live_css(token: str) -> str:
    """The rule the live widget adds: hide the saved view of explorer ``token`` (the live view shows it)."""
    return f".jp-OutputArea-child:has(.{_cls(token)}),.output_area:has(.{_cls(token)}){{display:none}}"


def saved_bundle(png: bytes, state: dict[str, Any], token: str, caption: str = "") -> tuple[dict[str, Any], dict[str, Any]]:
    """The saved view's mime bundle and metadata.

    Parameters
    ----------
    png
        PNG bytes of the current view.
    state
        The explorer state the picture shows (JSON-able); saved in the metadata.
    token
        Identifies the explorer (its widget model id), so only its own live view hides it.
    caption
        One line under the picture (method, class, layer), HTML-escaped here.

    Returns
    -------
    data, metadata
        ``text/html``, ``image/png`` and ``text/plain`` entries; ``{META_KEY: {"state": state}}``.
    """
    b64 = base64.b64encode(png).decode("ascii")
    cap = html.escape(caption)
    # In a reopened notebook without the kernel the widget output of this cell is an empty
    # error line ("model not found"): hide it, the picture says more.
    hide_error = f".jp-Cell:has(.{_cls(token)}) .jp-OutputArea-output.jupyter-widgets:not(:has(*)){{display:none}}"
    page = (
        f"<div class='sw-saved-view {_cls(token)}'><style>{hide_error}</style>"
        f"<img alt='{cap}' title='{cap}' style='max-width:100%' src='data:image/png;base64,{b64}'/>"
        f"<div style='font:12px monospace;color:#555'>saved view of the saliency explorer: {cap}</div></div>"
    )
    data = {"text/html": page, "image/png": b64, "text/plain": f"saliency explorer, saved view: {caption}"}
    return data, {META_KEY: {"state": json.loads(json.dumps(state))}}


class SavedView:
    """The saved-view output of one explorer: displayed once, then updated in place.

    Parameters
    ----------
    token
        Identifies the explorer (its widget model id).
    """

    def __init__(self, token: str) -> None:
        self.token = token
        self._handle: Any = None
        #: Number of updates sent (for tests and the render log).
        self.updates = 0

    @property
    def shown(self) -> bool:
        """True once the saved view was displayed in a notebook (updates then have a target)."""
        return self._handle is not None

    def display(self, png: bytes, state: dict[str, Any], caption: str) -> None:
        """Display the saved view (once per display of the explorer) with a new ``display_id``."""
        from IPython.display import display

        data, meta = saved_bundle(png, state, self.token, caption)
        self._handle = display(data, raw=True, metadata=meta, display_id=True)

    def update(self, png: bytes, state: dict[str, Any], caption: str) -> None:
        """Replace every displayed copy of the saved view with ``png`` (no-op before :meth:`display`)."""
        if self._handle is None:
            return
        data, meta = saved_bundle(png, state, self.token, caption)
        self._handle.update(data, raw=True, metadata=meta)
        self.updates += 1
