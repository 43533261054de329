""""export PNG" is a browser download of the current view (issue 17, item 6); to_png(path) stays for scripts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from saliency_widget.viz import render as R
from saliency_widget.widget import Explorer
from saliency_widget.widget.view import map_title
from tests.helpers import cnn_explorer


@pytest.fixture
def w() -> Explorer:
    widget = cnn_explorer()
    yield widget
    widget.close()


def test_export_button_sends_the_view_as_a_download_and_writes_no_file(
    w: Explorer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sent: list[tuple[Any, Any]] = []
    monkeypatch.setattr(w.ui.w_canvas, "send", lambda content, buffers=None: sent.append((content, buffers)))
    w.w_export.click()
    assert len(sent) == 1
    content, buffers = sent[0]
    assert content["type"] == "download" and content["mime"] == "image/png"
    assert re.fullmatch(r"saliency_\d{8}-\d{6}\.png", content["filename"])
    assert buffers == [w.to_png()]
    assert R.from_png(buffers[0]).ndim == 3
    assert w.status == f"downloaded the view as {content['filename']}"
    assert list(tmp_path.iterdir()) == []  # nothing written into the kernel's folder


def test_to_png_still_writes_a_file(w: Explorer, tmp_path: Path) -> None:
    data = w.to_png(tmp_path / "view.png")
    assert (tmp_path / "view.png").read_bytes() == data


def test_exported_map_title_names_method_class_and_probability(w: Explorer) -> None:
    assert w.wait(30)
    last = w._last
    assert last is not None
    assert map_title(last, "gradient") == f"Gradient: {last.class_label} p={last.probability:.3f}"
    assert map_title(None, "smoothgrad") == "SmoothGrad"
