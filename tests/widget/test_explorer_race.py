"""A new filter never renders at the old filter's clicked position (the channel/position race)."""

from __future__ import annotations

import pytest

from saliency_widget.widget import Explorer
from tests.helpers import cnn_explorer


@pytest.fixture
def w() -> Explorer:
    widget = cnn_explorer()
    yield widget
    widget.close()


def test_channel_change_resets_position_before_scheduling(w: Explorer, monkeypatch: pytest.MonkeyPatch) -> None:
    w.layer = "4"
    assert w.wait(30)
    w.click_activation(0, 0)
    assert w.wait(30) and w.position == (0, 0)
    seen_at_schedule: list[object] = []
    real = w._worker.schedule

    def spy() -> None:
        seen_at_schedule.append(w.position)  # what a worker snapshotting now would render
        real()

    monkeypatch.setattr(w._worker, "schedule", spy)
    w.channel = (w.channel + 1) % 12
    assert w.wait(30)
    assert seen_at_schedule == [None]
    strongest = w.explainer.strongest("4", w.channel)[0]
    assert w.render_log[-1].state["channel"] == w.channel
    assert w.render_log[-1].state["position"] is None
    assert list(w.w_canvas.marker) == list(strongest)


def test_slider_storm_ends_on_the_last_filter(w: Explorer) -> None:
    w.layer = "4"
    assert w.wait(30)
    before = w.computations
    for c in [1, 5, 2, 7, 3, 6, 0, 4] * 6:
        w.w_channel.value = c
    assert w.wait(60)
    assert w.render_log[-1].state["channel"] == 4 == w.channel
    assert w.computations - before <= 3  # at most one stale render plus the final one (and one in flight)
    assert list(w.w_canvas.marker) == list(w.explainer.strongest("4", 4)[0])
