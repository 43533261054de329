"""The one anywidget piece: a clickable feature-map canvas, plus ESM discovery."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ..viz.jsmodules import js_path

__all__ = ["FeatureMapCanvas", "esm_path", "ESM_NAME"]

ESM_NAME = "feature_map.js"


def esm_path(name: str = ESM_NAME) -> Path:
    """Locate an ES module shipped with the package (:func:`saliency_widget.viz.jsmodules.js_path`).

    In a wheel, ``js/`` is force-included as ``saliency_widget/static``; in a source
    checkout (editable install) the module lives in the repository's ``js/`` folder.

    Parameters
    ----------
    name
        File name of the module.

    Returns
    -------
    pathlib.Path
        Path of the existing file.

    Raises
    ------
    FileNotFoundError
        If neither location holds the module (a broken install).
    """
    return js_path(name)


class FeatureMapCanvas(anywidget.AnyWidget):
    """Canvas showing one feature map; clicking an activation sets :attr:`click`.

    Images cross the wire as PNG bytes in :attr:`png` (binary buffers, not base64).
    Commands from the front end arrive as custom messages ``{"type": "cmd", "id", "cmd"}``
    and get a reply ``{"type": "reply", "id", "ok", "result" | "error"}``.

    A command may carry ``after_click``: the ``seq`` of the last click the view sent before
    it. ipywidgets holds a state update back while an earlier one is unanswered but sends a
    custom message at once, so that click can arrive after the command (a double-click's first
    click overtaken by its "strongest"); the command then runs once the click has arrived
    (or after :attr:`click_grace_s` seconds), so the click never undoes it.
    """

    #: Seconds a command waits for the click it follows before it runs anyway.
    click_grace_s = 3.0

    # Read the module text once at import; anywidget's file watcher is not needed here.
    _esm = esm_path().read_text(encoding="utf-8")

    png = traitlets.Bytes(b"").tag(sync=True)
    grid = traitlets.List(traitlets.Int(), default_value=[1, 1]).tag(sync=True)
    marker = traitlets.List(traitlets.Int(), default_value=[]).tag(sync=True)
    caption = traitlets.Unicode("").tag(sync=True)
    size = traitlets.Int(224).tag(sync=True)
    click = traitlets.Dict(default_value={}).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._commands: dict[str, Callable[[dict[str, Any]], Any]] = {}
        self.on_msg(self._on_custom_msg)

    def register_command(self, name: str, fn: Callable[[dict[str, Any]], Any]) -> None:
        """Register ``fn(message) -> JSON-able result`` as the handler of command ``name``."""
        self._commands[name] = fn

    def handle_command(self, content: dict[str, Any]) -> dict[str, Any]:
        """Run one command message and build its reply (also used by tests).

        Parameters
        ----------
        content
            The message, ``{"type": "cmd", "id": ..., "cmd": name, ...}``.

        Returns
        -------
        dict
            The reply that was (or would be) sent to the front end.
        """
        msg_id = content.get("id")
        name = content.get("cmd")
        fn = self._commands.get(str(name))
        if fn is None:
            return {"type": "reply", "id": msg_id, "ok": False, "error": f"unknown command {name!r}"}
        try:
            return {"type": "reply", "id": msg_id, "ok": True, "result": fn(content)}
        except Exception as exc:  # reply with the error rather than leaving JS waiting
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            return {"type": "reply", "id": msg_id, "ok": False, "error": detail}

    def download(self, data: bytes, filename: str, mime: str = "image/png") -> None:
        """Make every open view of this canvas offer ``data`` to the browser as a file download.

        The bytes travel as one binary buffer of a ``{"type": "download", "filename", "mime"}``
        custom message; the front end saves them through an ``<a download>`` of a Blob.
        """
        self.send({"type": "download", "filename": str(filename), "mime": mime}, buffers=[bytes(data)])

    def _click_seq(self) -> int:
        seq = (self.click or {}).get("seq", 0)
        return seq if isinstance(seq, int) and not isinstance(seq, bool) else 0

    def _on_custom_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not (isinstance(content, dict) and content.get("type") == "cmd"):
            return
        after = content.get("after_click")
        if isinstance(after, int) and not isinstance(after, bool) and after > self._click_seq():
            self._after_click(after, content)
        else:
            self.send(self.handle_command(content))

    def _after_click(self, seq: int, content: dict[str, Any]) -> None:
        """Run command ``content`` once the click numbered ``seq`` has been applied (or after the grace time)."""
        done = threading.Lock()

        def run(_change: Any = None) -> None:
            if _change is not None and self._click_seq() < seq:
                return  # an older click; the one the command follows is still on its way
            if not done.acquire(blocking=False):
                return
            timer.cancel()
            self.unobserve(run, names="click")
            self.send(self.handle_command(content))

        timer = threading.Timer(self.click_grace_s, run)
        timer.daemon = True
        # observed after the owner's click handler, so the click is applied before the command runs
        self.observe(run, names="click")
        timer.start()
