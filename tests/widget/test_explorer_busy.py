"""Busy state, compare-view progress and cooperative cancellation of the explorer (issue 17, item 2)."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import pytest

from saliency_widget.engine import available_methods
from saliency_widget.errors import MethodError
from saliency_widget.views.pipeline import ViewCancelled, compute_view
from saliency_widget.widget import Explorer
from saliency_widget.widget import explorer as explorer_module
from saliency_widget.widget.view import busy_text
from tests.helpers import cnn_explorer


@pytest.fixture
def w() -> Explorer:
    widget = cnn_explorer()
    yield widget
    widget.close()


def _dimmed(w: Explorer) -> bool:
    return "sw-busy" in w.w_map._dom_classes


def test_busy_state_shows_before_the_computation_and_goes_with_the_view(w: Explorer, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    real = explorer_module.compute_view

    def slow(*args: Any, **kwargs: Any) -> Any:
        assert gate.wait(30)  # the "slow method": held until the test has looked at the busy state
        return real(*args, **kwargs)

    monkeypatch.setattr(explorer_module, "compute_view", slow)
    assert not _dimmed(w)
    w.method = "smoothgrad"
    # at once, in the caller's thread, before anything was computed
    assert "computing SmoothGrad …" in w.w_status.value
    assert _dimmed(w) and "sw-busy" in w.w_proj._dom_classes
    gate.set()
    assert w.wait(30)
    assert not _dimmed(w)
    assert w.status.startswith("SmoothGrad map for") and "computing" not in w.w_status.value


def test_busy_state_goes_when_the_render_fails(w: Explorer, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_args: Any, **_kwargs: Any) -> Any:
        raise MethodError("the map failed")

    monkeypatch.setattr(explorer_module, "compute_view", fail)
    w.method = "smoothgrad"
    assert w.wait(30)
    assert w.status == "error: the map failed"
    assert not _dimmed(w)


@pytest.mark.parametrize(
    ("method", "compare", "text"),
    [
        ("occlusion", 0, "computing Occlusion …"),
        ("gradient", 9, "computing Gradient and all 9 methods to compare …"),
    ],
)
def test_busy_text(method: str, compare: int, text: str) -> None:
    assert busy_text(method, compare) == text


def test_compare_view_shows_one_progress_step_per_method(w: Explorer, monkeypatch: pytest.MonkeyPatch) -> None:
    steps: list[tuple[int, int]] = []
    real = w.ui.show_progress
    monkeypatch.setattr(w.ui, "show_progress", lambda done, total: (steps.append((done, total)), real(done, total)))
    w.view = "compare"
    assert w.wait(60)
    n = len(w.methods)
    assert steps == [(i, n) for i in range(n + 1)]
    assert w.w_progress.layout.display == "none"  # hidden again once the view shows
    assert "compare" in w.images and not _dimmed(w)


def test_compare_view_gives_way_to_a_newer_request(w: Explorer, monkeypatch: pytest.MonkeyPatch) -> None:
    real = w._progress
    calls: list[int] = []

    def click_during(done: int, total: int) -> bool:
        calls.append(done)
        if done == 2 and len(calls) == 3:
            w.method = "occlusion"  # a newer click while the compare view computes its third map
        return real(done, total)

    monkeypatch.setattr(w, "_progress", click_during)
    w.view = "compare"
    assert w.wait(60)
    stopped = [r for r in w.render_log if r.cancelled]
    assert len(stopped) == 1 and stopped[0].state["method"] == "gradient" and stopped[0].images == {}
    last = w.render_log[-1]
    assert not last.cancelled and last.error is None
    assert last.state["method"] == "occlusion" and last.state["view"] == "compare"
    assert calls[:3] == [0, 1, 2] and calls[3] == 0  # the stale view stopped at its third map
    assert not _dimmed(w) and w.w_progress.layout.display == "none"


def test_compute_view_stops_when_progress_says_so(w: Explorer) -> None:
    snap = dataclasses.replace(w._snapshot(), view="compare")
    seen: list[tuple[int, int]] = []

    def stop_at_two(done: int, total: int) -> bool:
        seen.append((done, total))
        return done < 2

    with pytest.raises(ViewCancelled):
        compute_view(w.explainer, snap, methods=available_methods(), progress=stop_at_two)
    n = len(available_methods())
    assert seen == [(0, n), (1, n), (2, n)]
