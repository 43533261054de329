"""The explorer draws partial maps while a batched map computes, then the one-shot map (issue 29, item 3)."""

from __future__ import annotations

from typing import Any

import pytest

from saliency_widget.views import pipeline
from saliency_widget.views.rawmap import RawMap
from saliency_widget.widget.progressive import busy_title
from tests.helpers import cnn_explorer, settle

OPTIONS = {"occlusion": {"window": 4, "stride": 2}, "smoothgrad": {"batch_size": 8}, "integrated_gradients": {"batch_size": 8}}


def test_busy_title_names_the_method_and_the_fraction() -> None:
    inner, plain = busy_title("integrated_gradients", 0.5, partial=True)
    assert plain == "Integrated Gradients: partial map, 50% done · computing in the background (the kernel stays free)"
    assert "<b>Integrated Gradients</b>" in inner
    assert busy_title("smoothgrad")[1].startswith("SmoothGrad: computing …")


@pytest.mark.parametrize("method", ["occlusion", "smoothgrad", "integrated_gradients"])
def test_partial_maps_come_before_the_final_which_is_the_one_shot_map(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(pipeline.WIDGET_OPTIONS, "occlusion", OPTIONS["occlusion"])  # 11 x 11 patch positions
    w = cnn_explorer()
    try:
        w._maps.maps_every = 0.0  # every partial map, however fast the tiny net
        shown: list[tuple[float | None, bytes]] = []
        titles: list[str] = []
        real = w.ui.w_map.show_map

        def spy(raw: RawMap | None, base: Any, message: str | None = None, fraction: float | None = None) -> None:
            shown.append((fraction, raw.to_bytes() if raw is not None else b""))
            real(raw, base, message, fraction)

        monkeypatch.setattr(w.ui.w_map, "show_map", spy)
        w.ui.w_map_title.observe(lambda c: titles.append(c["new"]), names="value")
        w.method = method
        settle(w)
        fractions = [f for f, _ in shown]
        assert fractions[-1] is None and len(fractions) >= 2, fractions
        assert all(f is not None and 0 < f < 1 for f in fractions[:-1]) and fractions[:-1] == sorted(fractions[:-1])  # type: ignore[type-var]
        assert w.ui.w_map.meta.get("fraction") is None  # the final map is not marked partial
        one_shot = w.explainer.saliency(method=method, **OPTIONS[method])  # type: ignore[union-attr]
        assert shown[-1][1] == RawMap.from_map(one_shot[0].detach().cpu().numpy()).to_bytes()
        assert shown[0][1] != shown[-1][1]  # a partial map is not the final one
        label = busy_title(method)[0].split("</b>")[0]
        assert any(label in t and "% done" in t and "background" in t for t in titles), titles
        assert label in w.ui.w_map_title.value and "% done" not in w.ui.w_map_title.value
        assert "sw-busy" not in w.ui.w_map._dom_classes
    finally:
        w.close()


def test_no_partial_map_for_a_method_of_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    w = cnn_explorer()
    try:
        w.method = "guided_backprop"
        settle(w)
        assert w._maps.partials == 0
    finally:
        w.close()
