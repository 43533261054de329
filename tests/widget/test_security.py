"""Security of the explorer: labels and file names are escaped in every HTML string and export; no network
access at run time."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import ipywidgets as W
import pytest
import torch

import saliency_widget as sw
from saliency_widget.widget import Explorer, explore
from tests.helpers import XSS, settle, small_explorer, upload


@pytest.fixture
def w() -> Iterator[Explorer]:
    widget = small_explorer()
    yield widget
    widget.close()


def _html_values(widget: W.Widget) -> list[str]:
    """Every HTML string shown by the widget tree (W.HTML values, accordion titles)."""
    out: list[str] = []
    stack: list[Any] = [widget]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen or not isinstance(node, W.Widget):
            continue
        seen.add(id(node))
        if isinstance(node, (W.HTML, W.HTMLMath)):
            out.append(node.value)
        if isinstance(node, W.Accordion):
            out.extend(str(t) for t in node.titles)
        stack.extend(getattr(node, "children", ()) or ())
    for name in dir(widget):
        if name.startswith("w_"):
            val = getattr(widget, name, None)
            if isinstance(val, (W.HTML, W.HTMLMath)):
                out.append(val.value)
    return out


def test_labels_and_file_names_are_escaped_everywhere(w: Explorer) -> None:
    w.target = 2  # the XSS label
    settle(w)
    assert w.labels[2] == XSS
    html_values = _html_values(w)
    assert any("&lt;img src=x onerror=alert(1)&gt;" in v for v in html_values)
    assert not [v for v in html_values if "<img src=x" in v]
    # A file name is shown only in error messages (here the size cap); it is escaped too.
    upload(w, b"\0" * 10, name=XSS + ".png", size=30 * 2**20)
    settle(w)
    assert XSS in w.status  # plain text, as the user typed it
    html_values = _html_values(w)
    assert not [v for v in html_values if "<img src=x" in v]
    assert "&lt;img src=x onerror=alert(1)&gt;" in w.w_status.value
    # the exported HTML report escapes them as well
    w.target = 2
    settle(w)
    page = w.to_html()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any, *a: Any) -> Any:
        attempts.append(address)
        raise OSError(f"network access attempted at run time: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: refuse(None, address))  # type: ignore[arg-type]
    return attempts


def test_no_network_access_at_run_time(no_network: list[Any]) -> None:
    widget = explore()  # bundled model, weights and sample images
    try:
        assert widget.render_log[-1].error is None
        widget.method = "guided_backprop"
        settle(widget)
        name = list(widget._samples)[-1]
        widget.w_sample.value = name
        settle(widget)
        assert widget.render_log[-1].error is None and not widget.status.startswith("error")
        x = widget.explainer.inputs
        m = sw.saliency(widget._model, x, method="deconvnet")
        assert bool(torch.isfinite(m).all())
    finally:
        widget.close()
    assert no_network == []
