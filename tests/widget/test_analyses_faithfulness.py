"""The faithfulness analysis in the analyses panel: curves on the chart, sorted table, cancel."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from saliency_widget.analysis.faithfulness import RANDOM
from saliency_widget.errors import Cancelled
from saliency_widget.widget import faithpanel
from saliency_widget.widget.analyses import AnalysisPanel
from saliency_widget.widget.explorer import Explorer
from tests.helpers import assert_unchanged, small_explorer, snapshot


@pytest.fixture
def explorer() -> Iterator[Explorer]:
    w = small_explorer()
    try:
        yield w
    finally:
        w.close()


def open_panel(w: Explorer) -> AnalysisPanel:
    w.w_analyses.selected_index = 0
    panel = w.analysis_panel
    assert isinstance(panel, AnalysisPanel)
    return panel


def finish(panel: AnalysisPanel) -> faithpanel.FaithfulnessPanel:
    fp = panel.faithfulness
    assert fp.wait(120), "faithfulness did not finish"
    return fp


def test_chart_gets_the_current_method_and_the_random_curve(explorer: Explorer) -> None:
    panel = open_panel(explorer)
    explorer.method = "deconvnet"
    explorer.wait()
    panel.run("faithfulness")
    fp = finish(panel)
    assert fp.curves_shown == {"deletion": ["deconvnet", RANDOM], "insertion": ["deconvnet", RANDOM]}
    assert fp.m_deletion.y.shape == (2, fp.steps + 1) and fp.w_progress.description == "done"
    assert fp.first_curve_s is not None and fp.result is not None
    assert int(fp.result.targets[0]) == int(explorer.explainer.logits[0].argmax())  # the predicted class


def test_compare_view_charts_every_method_that_runs(explorer: Explorer) -> None:
    panel = open_panel(explorer)
    explorer.view = "compare"
    explorer.click_bar(1)  # another class: the curves track it
    explorer.wait()
    panel.run("faithfulness")
    fp = finish(panel)
    runnable = [m for m in explorer.methods if explorer.explainer.unavailable(m) is None]
    shown = fp.curves_shown["deletion"]
    assert shown[0] == explorer.method and sorted(shown) == sorted([*runnable, RANDOM])
    assert int(fp.result.targets[0]) == explorer.target


def _table_methods(table_html: str) -> list[str]:
    rows = re.findall(r"<tr><td[^>]*>(?:<span[^>]*></span>)?(.*?)</td>", table_html)
    return ["random" if "random order" in r else r for r in rows]


def test_table_is_html_sorted_by_quality_with_its_direction(explorer: Explorer) -> None:
    panel = open_panel(explorer)
    explorer.view = "compare"
    explorer.wait()
    panel.run("faithfulness")
    fp = finish(panel)
    table = fp.w_table.value
    assert table.startswith("<table") and "|---" not in table
    assert "deletion AUC<br/><small>lower is better" in table and "insertion AUC<br/><small>higher is better" in table
    ranking = fp.result.ranking(0)
    assert _table_methods(table) == [m for m, *_ in ranking]
    scores = [s for *_, s in ranking]
    assert scores == sorted(scores, reverse=True)


def test_cancel_stops_between_batches(explorer: Explorer) -> None:
    panel = open_panel(explorer)
    fp = panel.faithfulness
    fp.batch_size = 1  # one forward pass per batch: 3 + 2 x 2 x 19 per curve set
    fp._yield_to = fp.cancel  # the cancel click arrives during the first batch
    before = snapshot(explorer._model)
    panel.run("faithfulness")
    finish(panel)
    assert fp.cancelled and fp.w_progress.description == "cancelled"
    assert fp.batches == 2  # the batch running at the click finished, no other started
    assert fp.result is None and "cancelled" in fp.w_status.value
    assert_unchanged(explorer._model, before)


def test_a_newer_request_supersedes_the_running_one(explorer: Explorer, monkeypatch: pytest.MonkeyPatch) -> None:
    panel = open_panel(explorer)
    fp = panel.faithfulness
    fp.batch_size = 1
    stopped: list[str] = []
    real = faithpanel.deletion_insertion

    def counting(*args: Any, **kw: Any) -> Any:
        try:
            return real(*args, **kw)
        except Cancelled:
            stopped.append("x")
            raise

    monkeypatch.setattr(faithpanel, "deletion_insertion", counting)
    asked: list[int] = []

    def click_again() -> None:
        if not asked:
            asked.append(1)
            fp.run()  # a second click while the first request computes

    fp._yield_to = click_again
    panel.run("faithfulness")
    finish(panel)
    assert stopped == ["x"] and not fp.cancelled
    assert fp.curves_shown["deletion"] == [explorer.method, RANDOM] and fp.w_progress.description == "done"
