"""Top-9, the pointing game and the sanity check stop at the cancel button (issue 29).

The buttons run them on a worker thread, so the kernel stays free to receive the click on
"cancel"; the work stops before its next batch through engine.progress (as faithfulness and
the maps do), the model is left as it was, the last result stays, and the panel runs again.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from saliency_widget.analysis import TopActivations
from saliency_widget.widget.analyses import AnalysisPanel


def _model_state(model: torch.nn.Module) -> tuple[Any, ...]:
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())
    params = [p.detach().clone() for p in model.parameters()]
    return model.training, hooks, [p.requires_grad for p in model.parameters()], params


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
    assert a[:3] == b[:3]
    for x, y in zip(a[3], b[3], strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def _cancel_at_first_progress(p: AnalysisPanel) -> None:
    """Press "cancel" at the first progress update (a user who clicks once the work has started)."""

    def press(_change: dict[str, Any]) -> None:
        if p.progress_updates >= 1 and not p.w_stop.disabled:
            p.w_progress_text.unobserve(press, names="value")
            p.w_stop.click()

    p.w_progress_text.observe(press, names="value")


@pytest.fixture(scope="module")
def panel() -> AnalysisPanel:
    p = AnalysisPanel(dataset_size=96)
    p.w_layer.value = "features.relu3"
    yield p
    p.close()


@pytest.mark.parametrize(
    ("which", "button", "out"), [("topk", "w_topk", "w_out_html"), ("pointing", "w_pointing", "w_pointing_html"), ("sanity", "w_sanity", "w_sanity_html")]
)
def test_cancel_button_stops_the_analysis_before_its_next_batch(panel: AnalysisPanel, which: str, button: str, out: str) -> None:
    p = panel
    before_html = getattr(p, out).value
    before = _model_state(p.model)
    _cancel_at_first_progress(p)
    assert p.w_stop.disabled  # nothing to stop yet
    getattr(p, button).click()  # returns at once: the analysis runs on a worker thread
    assert p.job.wait(timeout=120)
    assert p.w_progress.description == "cancelled", (p.w_progress.description, p.w_progress_text.value)
    assert "cancelled" in p.w_progress_text.value and p.w_stop.disabled
    assert p.progress_updates == 1  # the one update that pressed cancel; no batch after it
    assert p.w_progress.value < 1.0
    assert getattr(p, out).value == before_html  # the last result stays shown, no error
    _same(before, _model_state(p.model))


def test_after_a_cancel_the_next_run_completes(panel: AnalysisPanel) -> None:
    p = panel
    _cancel_at_first_progress(p)
    p.w_topk.click()
    assert p.job.wait(timeout=120) and p.w_progress.description == "cancelled"
    p.w_layer.value = "features.relu1"  # 16 filters: fewer projections than relu3's 48
    res = p.run("topk")  # scripts call run(): it blocks and returns the result
    assert isinstance(res, TopActivations) and res.images_seen == 96 and len(res.channels) == 16
    assert p.w_progress.description == "done" and p.w_progress.value == 1.0 and p.w_out_img.value
    # a second start while one runs says so and starts nothing
    p.w_topk.click()
    p.w_pointing.click()
    assert "already running" in p.w_progress_text.value
    p.w_stop.click()
    assert p.job.wait(timeout=120) and p.w_progress.description in ("cancelled", "done")
