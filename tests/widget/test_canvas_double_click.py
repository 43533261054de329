"""A double-click's "strongest" command is never undone by its own first click arriving late.

The browser sends a click as a state update (which ipywidgets may hold back) and the
double-click as a custom message (sent at once), so the kernel can see them in either order;
the command carries ``after_click`` and waits for that click.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from saliency_widget.widget import Explorer
from tests.helpers import cnn_explorer, settle


@pytest.fixture
def w() -> Explorer:
    widget = cnn_explorer()
    widget.layer = "4"
    settle(widget)
    yield widget
    widget.close()


def _sent(w: Explorer, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    sent: list[Any] = []
    monkeypatch.setattr(w.w_canvas, "send", lambda msg, buffers=None: sent.append(msg))
    return sent


def _weak_cell(w: Explorer) -> tuple[tuple[int, int], tuple[int, int]]:
    """The filter's weakest and strongest cells (they differ on this image)."""
    act = w.explainer.activation("4")[0, w.channel]
    lo, hi = int(act.argmin()), int(act.argmax())
    width = act.shape[1]
    assert lo != hi
    return (lo // width, lo % width), (hi // width, hi % width)


def test_command_overtaking_its_click_waits_for_it(w: Explorer, monkeypatch: pytest.MonkeyPatch) -> None:
    sent = _sent(w, monkeypatch)
    weak, strong = _weak_cell(w)
    seq = int((w.w_canvas.click or {}).get("seq", 0))
    # the command arrives first, naming the click the browser sent before it
    w.w_canvas._on_custom_msg(w.w_canvas, {"type": "cmd", "id": "d1", "cmd": "strongest", "after_click": seq + 1}, [])
    assert sent == []  # not run yet: its click is still on the way
    w.w_canvas.click = {"y": weak[0], "x": weak[1], "seq": seq + 1}  # the late click
    settle(w)
    assert sent == [{"type": "reply", "id": "d1", "ok": True, "result": list(strong)}]
    assert w.position == strong
    assert list(w.w_canvas.marker) == list(strong)


def test_command_after_its_click_runs_at_once(w: Explorer, monkeypatch: pytest.MonkeyPatch) -> None:
    sent = _sent(w, monkeypatch)
    weak, strong = _weak_cell(w)
    w.click_activation(*weak)
    settle(w)
    assert w.position == weak
    seq = int(w.w_canvas.click["seq"])
    w.w_canvas._on_custom_msg(w.w_canvas, {"type": "cmd", "id": "d2", "cmd": "strongest", "after_click": seq}, [])
    settle(w)
    assert [m["id"] for m in sent] == ["d2"] and w.position == strong


def test_command_runs_after_the_grace_time_when_its_click_never_comes(w: Explorer, monkeypatch: pytest.MonkeyPatch) -> None:
    sent = _sent(w, monkeypatch)
    _weak, strong = _weak_cell(w)
    monkeypatch.setattr(w.w_canvas, "click_grace_s", 0.2)
    w.w_canvas._on_custom_msg(w.w_canvas, {"type": "cmd", "id": "d3", "cmd": "strongest", "after_click": 10**6}, [])
    deadline = time.monotonic() + 30
    while not sent and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sent and sent[0]["id"] == "d3" and sent[0]["ok"] is True
    settle(w)
    assert w.position == strong
    # the grace timer fired once: a later click is an ordinary click
    w.click_activation(0, 0)
    settle(w)
    assert w.position == (0, 0) and len(sent) == 1
