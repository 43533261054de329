"""Grad-CAM on channels-last and token layers, against pytorch-grad-cam's documented reshape transforms."""

from __future__ import annotations

from typing import Any, Callable

import pytest
import torch
from torch import nn

import saliency_widget as sw
from saliency_widget.engine.cam import default_cam_layer


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of two maps after each is min-max normalised."""
    a, b = a.double().flatten(), b.double().flatten()
    a = (a - a.min()) / (a.max() - a.min())
    b = (b - b.min()) / (b.max() - b.min())
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def _reference_cam(model: nn.Module, layer: nn.Module, x: torch.Tensor, target: int, reshape: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    cam_mod = pytest.importorskip("pytorch_grad_cam")
    targets_mod = pytest.importorskip("pytorch_grad_cam.utils.model_targets")
    cam = cam_mod.GradCAM(model=model, target_layers=[layer], reshape_transform=reshape)
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
    import torchvision

    m = torchvision.models.swin_t(weights=None)
    return m, m.norm, "norm", channels_last, 128


def _tv_vit() -> nn.Module:
    import torchvision

    m = torchvision.models.vit_b_16(weights=None, image_size=64)
    nn.init.normal_(m.heads.head.weight, std=0.02)  # torchvision initialises the head to zero: all scores 0
    return m


def _deit(block: str) -> Callable[[], tuple[nn.Module, nn.Module, str, Callable[..., Any], int]]:
    def build() -> tuple[nn.Module, nn.Module, str, Callable[..., Any], int]:
        timm = pytest.importorskip("timm")
        m = timm.create_model("deit_tiny_patch16_224", pretrained=False, img_size=64)
        return m, m.get_submodule(block), block, vit_reshape, 64

    return build


def _hf_swin() -> tuple[nn.Module, nn.Module, str, Callable[..., Any], int]:
    tr = pytest.importorskip("transformers")
    cfg = tr.SwinConfig(image_size=64, patch_size=4, embed_dim=16, depths=[1, 1, 1], num_heads=[1, 2, 2], window_size=4, num_labels=5)
    m = tr.SwinForImageClassification(cfg)
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
    torch.manual_seed(0)
    model, module, name, reshape, size = build()
    model.eval()
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
        (_tv_vit, "encoder.layers.encoder_layer_11.ln_1"),
        (lambda: _deit("blocks.11.norm1")()[0], "blocks.11.norm1"),
        # pooled models: the final norm
        (lambda: _hf_swin()[0].model, "swin.layernorm"),
        # torchvision Swin ends in an NCHW permute of its final norm: unchanged CNN rule
        (lambda: _tv_swin()[0], "permute"),
    ],
    ids=["tv-vit_b_16", "timm-deit", "hf-swin", "tv-swin_t"],
)
def test_default_gradcam_layer_of_transformers_is_not_degenerate(build: Callable[[], nn.Module], expected: str) -> None:
    torch.manual_seed(0)
    model = build().eval()
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(6))
    ex = sw.Explainer(model, x, intercept=False)
    assert default_cam_layer(ex) == expected
    cam = ex.saliency(method="gradcam")
    assert cam.shape == (1, 3, 64, 64)
    assert bool(cam.any())
    torch.testing.assert_close(cam, ex.saliency(method="gradcam", layer=expected))


def test_swin_gradcam_on_norm_equals_the_final_permute() -> None:
    torch.manual_seed(0)
    model = _tv_swin()[0].eval()
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(7))
    ex = sw.Explainer(model, x, intercept=False)
    torch.testing.assert_close(ex.saliency(3, "gradcam", layer="norm"), ex.saliency(3, "gradcam", layer="permute"))


def test_gradcam_refuses_an_ambiguous_layer() -> None:
    timm = pytest.importorskip("timm")
    model = timm.create_model("deit_tiny_patch16_224", pretrained=False, img_size=64, depth=2).eval()
    ex = sw.Explainer(model, torch.rand(1, 3, 64, 64), intercept=False)
    with pytest.raises(sw.LayerError, match=r"Grad-CAM needs a spatial layer.*'blocks.1.attn.q_norm'.*layout 'ambiguous'"):
        ex.saliency(method="gradcam", layer="blocks.1.attn.q_norm")
