"""A batched map (occlusion, SmoothGrad, IG) shows its progress and gives way between batches
to a newer request that does not need it (issue 17, item 2)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from saliency_widget.views import pipeline
from saliency_widget.views.pipeline import Snapshot, needs_map
from saliency_widget.widget import Explorer
from tests.helpers import cnn_explorer

BASE = Snapshot(
    version=3, method="occlusion", target=None, layer="1", channel=0, position=None, sign="absolute", clip=99.0,
    cmap="magma", overlay=False, alpha=0.6, view="single",
)


@pytest.mark.parametrize(
    ("change", "needed"),
    [
        ({}, True),
        ({"position": (1, 2), "cmap": "gray", "channel": 4}, True),  # other panels: the map is still needed
        ({"target": 2}, True),  # the predicted class, named
        ({"target": 1}, False),
        ({"method": "gradient"}, False),
        ({"method": "gradient", "view": "compare"}, True),  # the compare view shows occlusion too
        ({"version": 4}, False),  # a new image
    ],
)
def test_needs_map(change: dict[str, object], needed: bool) -> None:
    snap = dataclasses.replace(BASE, **change)  # type: ignore[arg-type]
    assert needs_map(snap, version=3, method="occlusion", target=2, predicted=2) is needed


@pytest.fixture
def w(monkeypatch: pytest.MonkeyPatch) -> Iterator[Explorer]:
    # One occluded copy per batch: the 24 px image has 2 x 2 patch positions, so 4 batches.
    monkeypatch.setitem(pipeline.WIDGET_OPTIONS, "occlusion", {"batch_size": 1})
    widget = cnn_explorer()
    widget.progress_every = 0.0
    yield widget
    widget.close()


def _watch_batches(w: Explorer, monkeypatch: pytest.MonkeyPatch, at_second: object) -> list[tuple[int, int]]:
    """Record the batches of the running map; call ``at_second()`` during the second one."""
    calls: list[tuple[int, int]] = []
    real = w._batches

    def watch(done: int, total: int) -> None:
        calls.append((done, total))
        if len(calls) == 2:
            at_second()  # type: ignore[operator]
        real(done, total)

    monkeypatch.setattr(w, "_batches", watch)
    return calls


def test_a_newer_request_without_the_map_stops_it_between_batches(w: Explorer, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _watch_batches(w, monkeypatch, lambda: setattr(w, "method", "gradient"))
    w.method = "occlusion"
    assert w.wait(60)
    assert calls == [(0, 4), (1, 4)]  # stopped before its third batch
    stopped = [r for r in w.render_log if r.cancelled]
    assert len(stopped) == 1 and stopped[0].state["method"] == "occlusion" and stopped[0].images == {}
    last = w.render_log[-1]
    assert last.state["method"] == "gradient" and last.error is None and not last.cancelled
    assert w.status.startswith("Gradient map for")
    assert "sw-busy" not in w.w_map._dom_classes and w.w_progress.layout.display == "none"


def test_a_newer_request_that_needs_the_map_lets_it_finish(w: Explorer, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _watch_batches(w, monkeypatch, lambda: w.click_activation(0, 0))
    w.method = "occlusion"
    assert w.wait(60)
    assert calls == [(0, 4), (1, 4), (2, 4), (3, 4)]  # computed once: the click's view reuses it
    assert not any(r.cancelled for r in w.render_log)
    last = w.render_log[-1]
    assert last.state["method"] == "occlusion" and tuple(last.state["position"]) == (0, 0) and "map" in last.images


def test_a_batched_map_shows_its_progress(w: Explorer, monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[tuple[float, str]] = []
    real = w.ui.show_fraction
    monkeypatch.setattr(w.ui, "show_fraction", lambda f, text: (shown.append((f, text)), real(f, text)))
    w.method = "occlusion"
    assert w.wait(60)
    assert shown == [(0.0, "0%"), (0.25, "25%"), (0.5, "50%"), (0.75, "75%")]
    assert w.w_progress.layout.display == "none" and w.w_progress.value == 0.0  # hidden once the view shows


def test_compare_view_progress_counts_the_batches_inside_a_method(w: Explorer, monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[tuple[float, str]] = []
    monkeypatch.setattr(w.ui, "show_fraction", lambda f, text: shown.append((f, text)))
    w.view = "compare"
    assert w.wait(60)
    n = len(w.methods)
    i = w.methods.index("occlusion")
    occlusion = [(f, t) for f, t in shown if t == f"{i}/{n}" and f * n - i in (0.0, 0.25, 0.5, 0.75)]
    assert [round(f * n - i, 6) for f, _ in occlusion] == [0.0, 0.25, 0.5, 0.75]
