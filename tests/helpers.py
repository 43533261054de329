"""Helpers shared by the tests: model-state snapshots, the reference ReLU, seeded tensors, test images.

Import them explicitly (``from tests.helpers import snapshot, assert_unchanged``); ``conftest.py``
holds only fixtures.
"""

from __future__ import annotations

import copy
import datetime
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch import nn

if TYPE_CHECKING:
    from saliency_widget.widget import Explorer

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The checkout's root folder (holds ``pyproject.toml``, ``js/``, ``scripts/``, ...)."""

# ----------------------------------------------------------------------------- seeded tensors


def seeded_randn(*shape: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard-normal tensor of ``shape`` from its own generator (the global RNG is not touched)."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def seeded_rand(*shape: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Uniform [0, 1) tensor of ``shape`` from its own generator (the global RNG is not touched)."""
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ----------------------------------------------------------------------------- model hygiene

HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_state_dict_pre_hooks",
    "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks",
)


def snapshot(model: nn.Module) -> dict[str, Any]:
    """Everything about a model that saliency-widget promises not to change."""
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()},
        "training": [(n, m.training) for n, m in model.named_modules()],
        "requires_grad": [(n, p.requires_grad) for n, p in model.named_parameters()],
        "grads": [(n, None if p.grad is None else p.grad.clone()) for n, p in model.named_parameters()],
        "types": [(n, type(m)) for n, m in model.named_modules()],
        "hooks": [(n, d, dict(getattr(m, d, {}))) for n, m in model.named_modules() for d in HOOK_DICTS],
        "global_hooks": global_hook_state(),
    }


def global_hook_state() -> dict[str, Any]:
    """Global module hooks and the depth of the torch-function-mode stack."""
    from torch.nn.modules import module as mm

    return {
        "fwd": dict(mm._global_forward_hooks),
        "pre": dict(mm._global_forward_pre_hooks),
        "bwd": dict(mm._global_backward_hooks),
        "mode_stack": torch._C._len_torch_function_stack(),
    }


def assert_unchanged(model: nn.Module, before: dict[str, Any]) -> None:
    """Fail unless ``model`` is bit-for-bit as recorded by :func:`snapshot` in ``before``."""
    after = snapshot(model)
    assert after["training"] == before["training"]
    assert after["requires_grad"] == before["requires_grad"]
    assert after["types"] == before["types"]
    assert after["hooks"] == before["hooks"]
    assert after["global_hooks"] == before["global_hooks"]
    assert after["state"].keys() == before["state"].keys()
    for k in before["state"]:
        a, b = after["state"][k], before["state"][k]
        assert a.dtype == b.dtype and a.shape == b.shape
        assert torch.equal(a, b), f"state {k!r} changed"
    for (n, g0), (_, g1) in zip(before["grads"], after["grads"]):
        assert (g0 is None) == (g1 is None), f"{n}.grad changed"
        if g0 is not None:
            assert torch.equal(g0, g1)


# ----------------------------------------------------------------------------- reference ReLU rules


class RefReLU(torch.autograd.Function):
    """Reference ReLU with an explicit-mask backward, written independently of the engine."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, rule: str) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.rule = rule
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        fwd = (x > 0).to(g.dtype)
        sig = (g > 0).to(g.dtype)
        if ctx.rule == "gradient":
            return g * fwd, None
        if ctx.rule == "deconvnet":
            return g * sig, None
        if ctx.rule == "guided_backprop":
            return g * fwd * sig, None
        raise ValueError(ctx.rule)


class RefReLUModule(nn.Module):
    """``nn.Module`` wrapper of :class:`RefReLU` for one rule."""

    def __init__(self, rule: str) -> None:
        super().__init__()
        self.rule = rule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return RefReLU.apply(x, self.rule)


def swap_relus(model: nn.Module, rule: str) -> nn.Module:
    """Deep copy of ``model`` with every ``nn.ReLU`` replaced by :class:`RefReLUModule` (reference only)."""
    ref = copy.deepcopy(model)
    for _name, mod in list(ref.named_modules()):
        for child_name, child in list(mod.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(mod, child_name, RefReLUModule(rule))
    return ref


# ----------------------------------------------------------------------------- test images (explorer tests)

XSS = "<img src=x onerror=alert(1)>"
LABELS = ["disc", "square", XSS]
"""Class names of :func:`tests.nets.small_cnn` (3 classes); the third is an XSS probe."""
SIDE = 24
"""Side in pixels of :func:`rgb_image` and of the tensors :func:`to_tensor` makes."""


def rgb_image(seed: int = 0, side: int = SIDE) -> Image.Image:
    """Seeded RGB noise image (side x side) with a red bar, so that maps are not pure noise."""
    rng = np.random.RandomState(seed)
    a = (rng.rand(side, side, 3) * 255).astype(np.uint8)
    a[side // 4 : side // 2, side // 4 : 3 * side // 4] = (240, 30, 30)
    return Image.fromarray(a)


def encode(img: Image.Image, fmt: str = "PNG", **kw: Any) -> bytes:
    """The bytes of ``img`` saved in ``fmt``."""
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def to_tensor(img: Image.Image) -> torch.Tensor:
    """Explorer transform for the tests: RGB, resized to SIDE, in [-0.5, 0.5]; shape (3, SIDE, SIDE)."""
    a = np.asarray(img.convert("RGB").resize((SIDE, SIDE)), dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1) - 0.5


def small_explorer() -> Explorer:
    """An explorer on :func:`tests.nets.small_cnn` with :data:`LABELS` and ``rgb_image(0)``; close it after use."""
    from saliency_widget.widget import explore
    from tests.nets import small_cnn

    return explore(small_cnn(), rgb_image(0), labels=LABELS, transform=to_tensor)


def cnn_explorer() -> Explorer:
    """An explorer on :func:`tests.nets.sequential_cnn` (4 classes, three conv-ReLU blocks) and seeded 24 px noise.

    The image is uniform noise from ``numpy.random.default_rng(0)``, preprocessed by :func:`to_tensor`; close it after use.
    """
    from saliency_widget.widget import explore
    from tests.nets import sequential_cnn

    rng = np.random.default_rng(0)
    image = Image.fromarray((rng.random((SIDE, SIDE, 3)) * 255).astype(np.uint8))
    return explore(sequential_cnn(), image, transform=to_tensor)


def settle(widget: Explorer) -> None:
    """Wait for the explorer's pending render (fails after 60 s)."""
    assert widget.wait(timeout=60), "render did not finish"


def upload(widget: Explorer, content: bytes, name: str = "mine.png", size: int | None = None) -> None:
    """Set the upload control's value as the browser would after the user picks a file."""
    widget.w_upload.value = (
        {
            "name": name,
            "type": "image/png",
            "size": len(content) if size is None else size,
            "content": memoryview(content),
            "last_modified": datetime.datetime.now(datetime.timezone.utc),
        },
    )
