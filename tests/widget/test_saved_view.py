"""Saved notebooks show the explorer's last view (issue 17, item 7): the saved-view output follows every render."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from saliency_widget.widget import Explorer
from saliency_widget.widget.saved import META_KEY, live_css, saved_bundle
from tests.helpers import REPO_ROOT, cnn_explorer


def test_saved_bundle_holds_the_picture_its_state_and_an_escaped_caption() -> None:
    data, meta = saved_bundle(b"\x89PNG fake", {"method": "gradcam"}, token="abc", caption="Grad-CAM: <cat> p=0.5")
    b64 = base64.b64encode(b"\x89PNG fake").decode()
    assert data["image/png"] == b64
    assert f"src='data:image/png;base64,{b64}'" in data["text/html"]
    assert "sw-saved-view sw-saved-abc" in data["text/html"]
    assert "&lt;cat&gt;" in data["text/html"] and "<cat>" not in data["text/html"]
    assert data["text/plain"] == "saliency explorer, saved view: Grad-CAM: <cat> p=0.5"
    assert meta == {META_KEY: {"state": {"method": "gradcam"}}}


def test_the_live_widget_hides_its_own_saved_view() -> None:
    assert live_css("abc") == ".jp-OutputArea-child:has(.sw-saved-abc),.output_area:has(.sw-saved-abc){display:none}"


class FakeHandle:
    """Stands in for IPython's DisplayHandle: records displays and updates."""

    def __init__(self, log: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> None:
        self.log = log

    def update(self, data: dict[str, Any], raw: bool, metadata: dict[str, Any]) -> None:
        assert raw
        self.log.append(("update", data, metadata))


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Explorer, list[tuple[str, dict[str, Any], dict[str, Any]]]]]:
    import IPython.display

    log: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    def display(data: dict[str, Any], raw: bool = False, metadata: dict[str, Any] | None = None, display_id: Any = None) -> Any:
        assert raw
        log.append(("display", data, metadata or {}))
        return FakeHandle(log) if display_id else None

    monkeypatch.setattr(IPython.display, "display", display)
    w = cnn_explorer()
    w._ipython_display_()
    yield w, log
    w.close()


def test_display_shows_the_widget_then_the_saved_view(shown: tuple[Explorer, list[Any]]) -> None:
    w, log = shown
    assert [kind for kind, _, _ in log] == ["display", "display"]
    widget, saved = log[0][1], log[1][1]
    assert widget["application/vnd.jupyter.widget-view+json"]["model_id"] == w.model_id
    assert "image/png" not in widget and widget["text/plain"].startswith("saliency explorer")
    assert base64.b64decode(saved["image/png"]) == w.to_png()
    assert f"sw-saved-{w.model_id}" in saved["text/html"]
    assert f"sw-saved-{w.model_id}" in w.ui.w_style.value  # the live view hides it


def test_every_render_updates_the_saved_view(shown: tuple[Explorer, list[Any]]) -> None:
    w, log = shown
    w.method = "gradcam"
    assert w.wait(60)
    w.click_activation(0, 0)
    assert w.wait(60)
    updates = [(d, m) for kind, d, m in log if kind == "update"]
    assert len(updates) == 2
    data, meta = updates[-1]
    assert base64.b64decode(data["image/png"]) == w.to_png()
    assert meta[META_KEY]["state"]["method"] == "gradcam" and meta[META_KEY]["state"]["position"] == [0, 0]
    assert "Grad-CAM" in data["text/plain"]


NOTEBOOK = [
    "from tests.helpers import cnn_explorer\nw = cnn_explorer()\nw",
    "w.method = 'gradcam'\nw.click_activation(1, 1)\nassert w.wait(60)",
    "import base64\nprint('LAST', base64.b64encode(w.to_png()).decode())",
]


@pytest.mark.slow
def test_nbconvert_html_shows_the_last_view(tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in NOTEBOOK]
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO_ROOT)}}).execute()
    last = nb.cells[2].outputs[0]["text"].split("LAST ")[1].strip()
    saved = [o for o in nb.cells[0].outputs if META_KEY in o.get("metadata", {})]
    assert len(saved) == 1 and saved[0]["data"]["image/png"] == last  # the saved view followed both renders
    assert saved[0]["metadata"][META_KEY]["state"]["method"] == "gradcam"
    page, _ = HTMLExporter().from_notebook_node(nb)
    (tmp_path / "saved.html").write_text(page)
    assert page.count(f"data:image/png;base64,{last}") == 1  # the last view, once (not the first one too)
    assert "sw-saved-view" in page
    assert "model not found" not in page
