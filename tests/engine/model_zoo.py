"""Random-weight models of the families people bring, built once per test session (no downloads).

Builders are cached: the large torchvision models cost seconds to initialise on a small CPU,
and the tests only read them (eval mode, no parameter changes).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch
from torch import nn


@contextmanager
def _seeded() -> Iterator[None]:
    # the same weights whichever test builds the model first, without touching the global RNG
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        yield


@functools.cache
def torchvision_model(name: str, **kw: Any) -> nn.Module:
    import torchvision

    with _seeded():
        m = torchvision.models.get_model(name, weights=None, **kw).eval()
        head = getattr(getattr(m, "heads", None), "head", None)
        if isinstance(head, nn.Linear):
            # torchvision's ViT initialises its head to zero: every score (and gradient) would be 0
            nn.init.normal_(head.weight, std=0.02)
    return m


@functools.cache
def timm_model(name: str, **kw: Any) -> nn.Module:
    timm = pytest.importorskip("timm")
    with _seeded():
        return timm.create_model(name, pretrained=False, **kw).eval()


@functools.cache
def timm_vit_with_registers() -> nn.Module:
    vit = pytest.importorskip("timm.models.vision_transformer")
    with _seeded():
        return vit.VisionTransformer(
            img_size=64, patch_size=16, embed_dim=48, depth=2, num_heads=2, reg_tokens=4, num_classes=5
        ).eval()


@functools.cache
def hf_model(kind: str) -> nn.Module:
    """Small Hugging Face classifiers for 64 x 64 inputs: ``"vit"``, ``"convnext"`` or ``"swin"``."""
    tr = pytest.importorskip("transformers")
    with _seeded():
        return _hf_build(tr, kind)


def _hf_build(tr: Any, kind: str) -> nn.Module:
    if kind == "vit":
        cfg = tr.ViTConfig(
            image_size=64, patch_size=16, hidden_size=48, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=96, num_labels=5,
        )
        return tr.ViTForImageClassification(cfg).eval()
    if kind == "convnext":
        return tr.ConvNextForImageClassification(tr.ConvNextConfig(hidden_sizes=[16, 32, 48, 64], depths=[1, 1, 1, 1], num_labels=5)).eval()
    cfg = tr.SwinConfig(
        image_size=64, patch_size=4, embed_dim=16, depths=[1, 1, 1], num_heads=[1, 2, 2], window_size=4, num_labels=5
    )
    return tr.SwinForImageClassification(cfg).eval()
