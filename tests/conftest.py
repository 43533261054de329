"""Shared fixtures: seeded RNG, model-state snapshots for hygiene checks, reference ReLU rules."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from saliency_widget.errors import reset_warnings

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


@pytest.fixture(autouse=True)
def _seed_and_fresh_warnings() -> None:
    torch.manual_seed(0)
    reset_warnings()


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
    from torch.nn.modules import module as mm

    return {
        "fwd": dict(mm._global_forward_hooks),
        "pre": dict(mm._global_forward_pre_hooks),
        "bwd": dict(mm._global_backward_hooks),
        "mode_stack": torch._C._len_torch_function_stack(),
    }


def assert_unchanged(model: nn.Module, before: dict[str, Any]) -> None:
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
    def __init__(self, rule: str) -> None:
        super().__init__()
        self.rule = rule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return RefReLU.apply(x, self.rule)


def swap_relus(model: nn.Module, rule: str) -> nn.Module:
    """Deep copy of ``model`` with every ``nn.ReLU`` replaced by :class:`RefReLUModule` (reference only)."""
    import copy

    ref = copy.deepcopy(model)
    for name, mod in list(ref.named_modules()):
        for child_name, child in list(mod.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(mod, child_name, RefReLUModule(rule))
    return ref
