"""The analyses panel on a model without ReLU (a Hugging Face ViT, random weights, tiny config).

Its layer menu is the engine's inspectable layers (as the explorer's), the sanity check runs a
method the model can run (the explorer's, or the one chosen in the panel), a failed
faithfulness run leaves no "computing …" row, and the layer, filter and method follow the
explorer's until the user changes them in the panel. Also: the progress of top-9's
projections, the pointing game's methods from the registry, with progress, beside the grid.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from saliency_widget.analysis import TopActivations
from saliency_widget.analysis.pointing import pointing_methods
from saliency_widget.engine import Explainer, available_methods
from saliency_widget.errors import SaliencyError
from saliency_widget.widget import explore, faithpanel
from saliency_widget.widget.analyses import AnalysisPanel
from saliency_widget.widget.explorer import Explorer
from tests.helpers import seeded_rand

LABELS = ["cat", "dog", "owl"]


@pytest.fixture(scope="module")
def vit() -> Iterator[Explorer]:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.ViTConfig(
        image_size=32, patch_size=8, num_hidden_layers=2, hidden_size=16, num_attention_heads=2, intermediate_size=32,
        num_labels=3, id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)},
    )
    rng = np.random.default_rng(0)
    image = Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8))
    w = explore(transformers.ViTForImageClassification(cfg).eval(), image, data=seeded_rand(6, 3, 32, 32, seed=3) - 0.5)
    assert w.wait(60)
    yield w
    w.close()


@pytest.fixture
def panel(vit: Explorer) -> Iterator[AnalysisPanel]:
    vit.method, vit.layer, vit.channel = "gradient", "vit.layernorm", 3
    assert vit.wait(60)
    p = AnalysisPanel(vit.model, data=vit.data, transform=vit.model_io.transform, explorer=vit)
    yield p
    p.close()


def keys(dropdown: Any) -> list[Any]:
    return [o[1] if isinstance(o, tuple) else o for o in dropdown.options]


def test_layer_menu_is_the_engines_inspectable_layers(vit: Explorer, panel: AnalysisPanel) -> None:
    assert keys(panel.w_layer) == keys(vit.w_layer)  # the same layers as the explorer's menu (pass-through ones hidden)
    assert len(keys(panel.w_layer)) > 20 and "vit.layers.1.mlp.fc1" in keys(panel.w_layer)
    assert "vit.layers.0.dropout" not in keys(panel.w_layer)
    vit.layer = "vit.layers.0.dropout"  # shown in the explorer ("all layers"): the panel lists it too
    assert panel.w_layer.value == "vit.layers.0.dropout"
    vit.layer = "vit.layernorm"
    assert panel.w_layer.value == "vit.layernorm" and panel.w_filter.value == 3
    panel.w_follow.value = False
    panel.w_layer.value = "vit.layers.0.mlp.fc1"
    assert panel.w_filter.max == 31  # 32 hidden units: the slider fits the layer before any scan


def test_sanity_runs_a_method_the_model_can_run(vit: Explorer, panel: AnalysisPanel) -> None:
    offered = keys(panel.w_sanity_method)
    assert "gradient" in offered and "gradcam" in offered
    assert "guided_backprop" not in offered and "deconvnet" not in offered  # no ReLU: they cannot run here
    assert panel.w_sanity_method.value == "gradient"  # the explorer's
    vit.method = "input_x_gradient"
    assert panel.w_sanity_method.value == "input_x_gradient"
    results = panel.run("sanity")
    assert results is not None and [r.method for r in results] == ["input_x_gradient"]
    assert "error" not in panel.w_progress.description and panel.w_sanity_img.layout.display == ""
    assert panel.progress_updates >= 3  # one per randomised layer


def test_panel_follows_the_explorer_until_the_user_changes_it(vit: Explorer, panel: AnalysisPanel) -> None:
    vit.layer = "vit.layers.1.mlp.fc1"
    vit.channel = 7
    assert (panel.w_layer.value, panel.w_filter.value, panel.w_follow.value) == ("vit.layers.1.mlp.fc1", 7, True)
    panel.w_layer.value = "vit.layers.0.layernorm_after"  # the user's choice in the panel
    assert panel.w_follow.value is False
    vit.layer = "vit.layernorm"
    vit.channel = 2
    assert panel.w_layer.value == "vit.layers.0.layernorm_after"  # kept
    panel.w_follow.value = True  # follow again: the explorer's layer and filter at once
    assert (panel.w_layer.value, panel.w_filter.value) == ("vit.layernorm", 2)


def test_a_failed_faithfulness_run_leaves_no_computing_row(vit: Explorer, panel: AnalysisPanel, monkeypatch: pytest.MonkeyPatch) -> None:
    fp = panel.faithfulness
    assert not fp.chart_shown and "press the button" in fp.w_hint.value  # no empty chart before a run
    vit.method = "deconvnet"  # cannot run on a GELU model
    panel.run("faithfulness")
    assert fp.wait(60)
    assert "cannot run on this model" in fp.w_status.value and "computing" not in fp.w_table.value
    vit.method = "gradient"

    def broken(*_a: Any, **_kw: Any) -> None:
        raise SaliencyError("the model broke")

    monkeypatch.setattr(faithpanel, "deletion_insertion", broken)
    panel.run("faithfulness")
    assert fp.wait(60)
    assert "the model broke" in fp.w_status.value and "computing" not in fp.w_table.value
    assert fp.w_progress.description == "error" and not fp.chart_shown


def test_top9_on_token_layers_reports_the_projections(vit: Explorer, panel: AnalysisPanel, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str]] = []
    real = panel.job.show
    monkeypatch.setattr(panel.job, "show", lambda done, label, text="": (seen.append((label, text)), real(done, label, text)))
    res = panel.run("topk")
    assert isinstance(res, TopActivations) and res.images_seen == 6
    assert res.method == "gradient"  # no ReLU: projected with the gradient, as the explorer does
    labels = [label for label, _ in seen]
    assert "scan" in labels and "project" in labels and labels.index("project") > labels.index("scan")
    pairs = res.values.shape[0] * res.values.shape[1]  # 16 filters x 6 winners (6 images)
    assert any(f"projecting the winners (gradient) {pairs} of {pairs}" in text for _, text in seen)
    assert panel.w_out_img.layout.display == "" and panel.w_progress.value == 1.0


def test_pointing_game_methods_come_from_the_registry() -> None:
    from saliency_widget.models import shapes_cnn

    probe = Explainer(shapes_cnn(), torch.zeros(1, 3, 32, 32))
    keep, out = pointing_methods(available_methods(), probe)
    assert keep[:4] == ["gradient", "deconvnet", "guided_backprop", "gradcam"] and "layercam" in keep
    assert {"occlusion", "smoothgrad", "integrated_gradients", "scorecam"} <= set(out)
    assert set(keep) | set(out) == set(available_methods())


def test_pointing_game_shows_progress_beside_the_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    p = AnalysisPanel(dataset_size=24)
    try:
        p.w_layer.value = "features.relu3"
        p.run("topk")
        grid = p.w_out_img.value
        texts: list[str] = []
        real = p.job.show
        monkeypatch.setattr(p.job, "show", lambda done, label, text="": (texts.append(text), real(done, label, text)))
        res = p.run("pointing")
        keep, _ = pointing_methods(available_methods(), None)
        assert sorted(res.accuracy) == sorted([*keep, "centre baseline"])
        assert p.progress_updates >= len(keep)  # at least one per method (one batch of 24 scenes)
        assert any(f"of {24 * len(keep)} maps" in t for t in texts)
        assert p.w_out_img.value == grid and "left out" in p.w_pointing_html.value and "occlusion" in p.w_pointing_html.value
    finally:
        p.close()
