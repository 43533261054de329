"""The one anywidget piece: a clickable feature-map canvas, plus ESM discovery."""

from __future__ import annotations

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
    """

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

    def _on_custom_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "cmd":
            self.send(self.handle_command(content))
