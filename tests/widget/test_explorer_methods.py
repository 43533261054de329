"""The explorer offers every method beyond the three ReLU rules and renders a map with each."""

from __future__ import annotations

import pytest

from saliency_widget.engine import get_method

# the methods beyond gradient, deconvnet and guided_backprop (see tests/engine/test_method_options.py)
NEW = ["gradcam", "guided_gradcam", "gradcampp", "xgradcam", "layercam", "eigencam", "scorecam", "smoothgrad", "integrated_gradients", "input_x_gradient", "occlusion"]


@pytest.fixture(scope="module")
def explorer():  # type: ignore[no-untyped-def]
    from saliency_widget.widget import explore

    w = explore()
    w.wait(60)
    yield w
    w.close()


@pytest.mark.parametrize("method", NEW)
def test_widget_offers_and_renders_new_method(explorer, method: str) -> None:  # type: ignore[no-untyped-def]
    from saliency_widget.viz import render as R

    assert method in [v for _, v in explorer.w_method.options]
    before = explorer.images["map"]
    explorer.method = method
    assert explorer.wait(120)
    assert explorer.status.startswith(get_method(method).label), explorer.status
    png = explorer.images["map"]
    assert png != before and not R.is_blank(R.from_png(png))
