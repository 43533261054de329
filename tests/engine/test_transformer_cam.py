"""Grad-CAM on channels-last and token layers, against pytorch-grad-cam's documented reshape transforms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import saliency_widget as sw
from saliency_widget.engine.cam import default_cam_layer
from tests.engine.model_zoo import hf_model, timm_model, torchvision_model


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of two maps after each is min-max normalised."""
    a, b = a.double().flatten(), b.double().flatten()
    a = (a - a.min()) / (a.max() - a.min())
    b = (b - b.min()) / (b.max() - b.min())
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def _reference_cam(model: nn.Module, layer: nn.Module, x: torch.Tensor, target: int, reshape: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    cam_mod = pytest.importorskip("pytorch_grad_cam")
    targets_mod = pytest.importorskip("pytorch_grad_cam.utils.model_targets")
    with cam_mod.GradCAM(model=model, target_layers=[layer], reshape_transform=reshape) as cam:  # hooks removed on exit
        return torch.from_numpy(cam(input_tensor=x, targets=[targets_mod.ClassifierOutputTarget(target)]))[0]


# pytorch-grad-cam's documented transforms (README "Vision Transformers" / swinT_example.py)
def vit_reshape(tensor: torch.Tensor, height: int = 4, width: int = 4) -> torch.Tensor:
    result = tensor[:, 1:, :].reshape(tensor.size(0), height, width, tensor.size(2))
    return result.transpose(2, 3).transpose(1, 2)


def swin_reshape(tensor: torch.Tensor, height: int = 4, width: int = 4) -> torch.Tensor:
    result = tensor.reshape(tensor.size(0), height, width, tensor.size(2))
    return result.transpose(2, 3).transpose(1, 2)


def channels_last(tensor: torch.Tensor) -> torch.Tensor:
    # torchvision's Swin already returns (N, H, W, C): the documented transform's channel move only
    return tensor.transpose(2, 3).transpose(1, 2)


class LogitsOnly(nn.Module):
    """pytorch-grad-cam needs a tensor output: its documented Hugging Face wrapper."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).logits


def _tv_swin() -> tuple[nn.Module, nn.Module, str, Callable[..., Any], int]:
    m = torchvision_model("swin_t")
    return m, m.norm, "norm", channels_last, 128


def _deit(block: str) -> Callable[[], tuple[nn.Module, nn.Module, str, Callable[..., Any], int]]:
    def build() -> tuple[nn.Module, nn.Module, str, Callable[..., Any], int]:
        m = timm_model("deit_tiny_patch16_224", img_size=64)
        return m, m.get_submodule(block), block, vit_reshape, 64

    return build


def _hf_swin() -> tuple[nn.Module, nn.Module, str, Callable[..., Any], int]:
    m = hf_model("swin")
    return LogitsOnly(m), m.swin.layernorm, "swin.layernorm", swin_reshape, 64


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(_tv_swin, id="torchvision-swin_t-norm"),
        pytest.param(_deit("blocks.11.norm1"), id="deit-last-block-norm1"),
        pytest.param(_deit("blocks.10"), id="deit-encoder-block-10"),
        pytest.param(_hf_swin, id="hf-swin-layernorm"),
    ],
)
def test_gradcam_matches_pytorch_grad_cam(build: Callable[[], tuple[nn.Module, nn.Module, str, Callable[..., Any], int]]) -> None:
    pytest.importorskip("pytorch_grad_cam")
    model, module, name, reshape, size = build()
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(5))
    if isinstance(model, LogitsOnly):
        ours_model, layer = model.model, name  # ours reads the HF output's .logits itself
    else:
        ours_model, layer = model, name
    with torch.no_grad():
        target = int(model(x).argmax(1))
    ours = sw.saliency(ours_model, x, target=target, method="gradcam", layer=layer)[0, 0]
    ref = _reference_cam(model, module, x, target, reshape)
    assert ours.shape == ref.shape == (size, size)
    assert ours.max() > 0 and ref.max() > 0
    assert _corr(ours, ref) >= 0.99


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        # class-token ViTs: the input norm of the last block (after it the patch tokens never reach the score)
        (lambda: torchvision_model("vit_b_16", image_size=64), "encoder.layers.encoder_layer_11.ln_1"),
        (lambda: _deit("blocks.11.norm1")()[0], "blocks.11.norm1"),
        # pooled models: the final norm
        (lambda: _hf_swin()[0].model, "swin.layernorm"),
        # torchvision Swin ends in an NCHW permute of its final norm: unchanged CNN rule
        (lambda: _tv_swin()[0], "permute"),
        # ConvNeXt: the last block's output (after its skip connection), not its branch
        (lambda: torchvision_model("convnext_tiny"), "features.7.2"),
        (lambda: hf_model("convnext"), "convnext.encoder.stages.3.layers.0"),
        # CNNs whose last leaf is the block's output: the leaf
        (lambda: torchvision_model("resnet18"), "layer4.1.relu#1"),
        (lambda: torchvision_model("efficientnet_b0"), "features.8.2"),
    ],
    ids=["tv-vit_b_16", "timm-deit", "hf-swin", "tv-swin_t", "tv-convnext_tiny", "hf-convnext", "tv-resnet18", "tv-efficientnet_b0"],
)
def test_default_gradcam_layer_of_transformers_is_not_degenerate(build: Callable[[], nn.Module], expected: str) -> None:
    model = build()
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(6))
    ex = sw.Explainer(model, x, intercept=False)
    assert default_cam_layer(ex) == expected
    cam = ex.saliency(method="gradcam")
    assert cam.shape == (1, 3, 64, 64)
    assert bool(cam.any())
    torch.testing.assert_close(cam, ex.saliency(method="gradcam", layer=expected))


def test_swin_gradcam_on_norm_equals_the_final_permute() -> None:
    model = _tv_swin()[0]
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(7))
    ex = sw.Explainer(model, x, intercept=False)
    torch.testing.assert_close(ex.saliency(3, "gradcam", layer="norm"), ex.saliency(3, "gradcam", layer="permute"))


def test_gradcam_refuses_an_ambiguous_layer() -> None:
    model = timm_model("deit_tiny_patch16_224", img_size=64)
    ex = sw.Explainer(model, torch.rand(1, 3, 64, 64), intercept=False)
    with pytest.raises(sw.LayerError, match=r"Grad-CAM needs a spatial layer.*'blocks.11.attn.q_norm'.*layout 'ambiguous'"):
        ex.saliency(method="gradcam", layer="blocks.11.attn.q_norm")
