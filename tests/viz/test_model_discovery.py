"""describe_model on Hugging Face and timm models: id2label, image processors, pretrained_cfg (all offline)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from saliency_widget.viz.modelio import describe_model
from tests.helpers import REPO_ROOT


def _image(seed: int = 0, size: tuple[int, int] = (50, 40)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8))


@pytest.fixture(scope="module")
def hf_vit() -> torch.nn.Module:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.ViTConfig(
        image_size=32, patch_size=8, num_hidden_layers=1, hidden_size=16, num_attention_heads=2,
        intermediate_size=32, num_labels=3, id2label={0: "cat", 1: "dog", 2: "owl"}, label2id={"cat": 0, "dog": 1, "owl": 2},
    )
    return transformers.ViTForImageClassification(cfg).eval()


def test_labels_from_hf_id2label(hf_vit: torch.nn.Module) -> None:
    io = describe_model(hf_vit)
    assert io.labels == ["cat", "dog", "owl"]
    # no processor: the default normalisation, sized to the config's image_size (ViT needs it exactly)
    assert io.source == "default"
    assert io.transform(_image()).shape == (3, 32, 32)


def test_id2label_with_string_keys_is_read_in_index_order() -> None:
    class Config:
        id2label = {"1": "b", "0": "a", "2": "c"}

    class Model(torch.nn.Module):
        config = Config()

    assert describe_model(Model()).labels == ["a", "b", "c"]


def test_explicit_labels_win_over_id2label(hf_vit: torch.nn.Module) -> None:
    assert describe_model(hf_vit, labels=["x", "y", "z"]).labels == ["x", "y", "z"]


def test_hf_processor_is_the_transform(hf_vit: torch.nn.Module) -> None:
    transformers = pytest.importorskip("transformers")
    proc = transformers.ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.1, 0.2, 0.3], image_std=[0.5, 0.6, 0.7])
    io = describe_model(hf_vit, processor=proc)
    img = _image(1)
    expected = proc(images=img, return_tensors="pt")["pixel_values"][0]
    torch.testing.assert_close(io.transform(img), expected)
    assert io.mean == pytest.approx((0.1, 0.2, 0.3)) and io.std == pytest.approx((0.5, 0.6, 0.7))
    assert io.source == "processor" and io.labels == ["cat", "dog", "owl"]
    # the literal arithmetic of one pixel: resize of a uniform image keeps its value
    flat = Image.new("RGB", (10, 10), (255, 0, 51))
    torch.testing.assert_close(io.transform(flat)[:, 0, 0], torch.tensor([(1.0 - 0.1) / 0.5, (0.0 - 0.2) / 0.6, (0.2 - 0.3) / 0.7]))


def test_processor_must_be_callable() -> None:
    from saliency_widget.errors import InputError

    with pytest.raises(InputError, match="processor must be a Hugging Face image processor"):
        describe_model(torch.nn.Identity(), processor=42)


def test_timm_pretrained_cfg_gives_timms_own_transform() -> None:
    timm = pytest.importorskip("timm")
    model = timm.create_model("convnext_atto", pretrained=False, num_classes=5).eval()
    io = describe_model(model)
    cfg = timm.data.resolve_data_config({}, model=model)
    img = _image(2, (300, 260))
    torch.testing.assert_close(io.transform(img), timm.data.create_transform(**cfg)(img))
    assert io.transform(img).shape == (3, 224, 224)  # input_size (3, 224, 224), crop_pct 0.875 -> resize 256, crop 224
    assert io.mean == pytest.approx(model.pretrained_cfg["mean"]) and io.std == pytest.approx(model.pretrained_cfg["std"])
    assert io.source == "timm pretrained_cfg" and io.labels is None


def test_timm_custom_cfg_is_followed() -> None:
    timm = pytest.importorskip("timm")
    model = timm.create_model(
        "convnext_atto", pretrained=False, num_classes=2,
        pretrained_cfg_overlay={"input_size": (3, 64, 64), "crop_pct": 1.0, "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)},
    ).eval()
    io = describe_model(model)
    flat = Image.new("RGB", (80, 64), (255, 255, 255))
    out = io.transform(flat)
    assert out.shape == (3, 64, 64)
    torch.testing.assert_close(out[:, 5, 5], torch.full((3,), 2.0))  # (1 - 0.5) / 0.25


def test_plain_models_import_neither_timm_nor_transformers() -> None:
    code = (
        "import sys, torch\n"
        "from saliency_widget.viz.modelio import describe_model\n"
        "describe_model(torch.nn.Conv2d(3, 1, 1))\n"
        "from saliency_widget.models import shapes_cnn\n"
        "describe_model(shapes_cnn())\n"
        "print(sorted(m for m in ('timm', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
