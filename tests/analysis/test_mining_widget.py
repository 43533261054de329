"""explore(index=...): the top-9 grid of the current layer and filter comes from the mined index, never from a scan."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import saliency_widget as sw
from saliency_widget.analysis import load_index, mine
from saliency_widget.data.folders import SceneStream
from saliency_widget.models import shapes_cnn
from saliency_widget.viz.modelio import describe_model
from saliency_widget.widget import analyses, explore


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = shapes_cnn()
    io = describe_model(model)
    out = tmp_path_factory.mktemp("widget-index")
    mine(model, SceneStream(12, io.transform, size=32, seed=1), ["features.relu1", "features.relu3"], out, k=4,
         batch_size=6, mean=io.mean, std=io.std, progress=False)
    return out


def test_explore_with_index_shows_grid_without_scanning(index_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_scan(*_a: object, **_kw: object) -> None:
        raise AssertionError("top_activations was called: the widget rescanned")

    monkeypatch.setattr(analyses, "top_activations", no_scan)
    ex = explore(index=index_dir)
    try:
        panel = ex.analysis_panel
        index = load_index(index_dir)
        ex.layer = "features.relu3"
        ex.channel = 5
        assert panel.w_layer.value == "features.relu3" and panel.w_filter.value == 5
        assert panel.w_out_img.value == index.grid_png("features.relu3", 5)
        assert "no rescan" in panel.w_out_html.value and "filter 5" in panel.w_out_html.value
        panel.w_filter.value = 2  # paging through filters in the panel reads the index too
        assert panel.w_out_img.value == index.grid_png("features.relu3", 2)
        res = panel.run("topk")  # the button
        assert isinstance(res, analyses.IndexedTop) and res.layer == "features.relu3"
        assert panel.w_progress.description == "done"
    finally:
        ex.close()


def test_explore_refuses_index_of_another_model(index_dir: Path) -> None:
    other = shapes_cnn()
    with torch.no_grad():
        other.classifier.fc2.bias.add_(1.0)
    with pytest.raises(sw.ModelError, match="mined with model"):
        explore(other, index=index_dir)
