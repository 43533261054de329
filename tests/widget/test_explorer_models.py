"""explore() on the models people bring: a Hugging Face ViT (labels from id2label, token layers) and a compiled CNN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from saliency_widget.engine import available_methods, get_method
from saliency_widget.widget import Explorer, explore
from tests.nets import sequential_cnn

LABELS = ["cat", "dog", "owl"]


def _image(seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8))


@pytest.fixture(scope="module")
def vit() -> Explorer:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.ViTConfig(
        image_size=32, patch_size=8, num_hidden_layers=2, hidden_size=16, num_attention_heads=2, intermediate_size=32,
        num_labels=3, id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)},
    )
    w = explore(transformers.ViTForImageClassification(cfg).eval(), _image())
    yield w
    w.close()


def test_hf_vit_labels_come_from_id2label(vit: Explorer) -> None:
    assert vit.labels == LABELS
    assert vit.render_log[-1].error is None
    assert vit.inputs.explainer().inputs.shape == (1, 3, 32, 32)  # sized to config.image_size


def test_hf_vit_layer_menu_lists_token_layers_as_grids(vit: Explorer) -> None:
    labels = dict((k, label) for label, k in vit.w_layer.options)
    # the last block's input norm (transformers 5: vit.layers.1.layernorm_before; 4.x: vit.encoder.layer.1...)
    norm = next(k for k in labels if k.endswith("1.layernorm_before"))
    assert "16x4x4, tokens: 1 prefix + grid" in labels[norm]
    vit.layer = norm
    assert vit.wait(60) and vit.render_log[-1].error is None
    assert list(vit.w_canvas.grid) == [4, 4]


@pytest.mark.parametrize("method", available_methods())
def test_hf_vit_every_method_renders_or_says_why(vit: Explorer, method: str) -> None:
    vit.method = method
    assert vit.wait(180)
    assert vit.render_log[-1].error is None, vit.render_log[-1].error
    assert not vit.status.startswith(("error", "unexpected")), vit.status
    if get_method(method).needs_relu_rules:
        assert "has no ReLU" in (vit.messages["map"] or "")
    else:
        assert "map" in vit.images or vit.messages["map"]  # a map, or a degenerate-map message


def test_compiled_model_is_explained_and_says_so() -> None:
    model = sequential_cnn()
    compiled = torch.compile(model, backend="eager")
    w = explore(compiled, _image(1), transform=lambda img: torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1))
    try:
        assert "compiled model: explained through its original module" in w.status
        w.method = "guided_backprop"
        assert w.wait(60) and w.render_log[-1].error is None
        ref = explore(model, _image(1), transform=lambda img: torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1))
        ref.method = "guided_backprop"
        assert ref.wait(60)
        assert ref.images["map"] == w.images["map"]
        ref.close()
    finally:
        w.close()
