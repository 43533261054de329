"""Isolated sessions: any number of Explainers on one model, in one thread or many, give what each gives alone.

The engine puts recording hooks on the model and switches it to eval mode while it runs a
forward; both are shared by every session on the model object (see
:mod:`saliency_widget.engine.sharing`). Each case compares with the same request run alone,
with ``torch.equal`` (the computation is the same, so the bits are), and checks that the model
comes back exactly as it was. Threads meet at a barrier, and a layer that sleeps inside the
forward makes them overlap in the middle of each other's forward passes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import saliency_widget as sw
from saliency_widget.engine import Explainer, available_methods
from saliency_widget.engine.capture import LayerCapture, foreign_forward_hooks
from saliency_widget.engine.sharing import eval_mode, sessions_in_eval
from tests.helpers import assert_unchanged, seeded_randn, snapshot

SIDE = 16
JOIN_S = 120  # bound on every thread: a hang fails the test instead of the run


class Dawdle(nn.Module):
    """The identity, after a short sleep: another thread runs in the middle of this forward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.002)
        return x


def dawdling_cnn(seed: int = 0) -> nn.Sequential:
    """Conv-BN-ReLU blocks with sleeps, 4 classes; left in *training* mode (the engine runs it in eval)."""
    torch.manual_seed(seed)
    m = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), Dawdle(), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), Dawdle(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4),
    )  # fmt: skip
    with torch.no_grad():  # non-trivial running statistics: eval and train mode give different maps
        m[1].running_mean.uniform_(-0.5, 0.5)
        m[1].running_var.uniform_(0.5, 2.0)
    m.train()
    m[5].eval()  # a mixed state must come back exactly
    return m


LAYER = "9"  # the last spatial ReLU, (8, 4, 4)
FAST = dict(window=8, stride=4)  # occlusion options: 9 patches


def requests(ex: Explainer, method: str) -> list[torch.Tensor]:
    """What a session asks: one method's map, a projection and an activation."""
    opts: dict[str, Any] = dict(FAST) if method == "occlusion" else {}
    if method in ("smoothgrad", "integrated_gradients"):
        opts = {"n": 3} if method == "smoothgrad" else {"steps": 3}
    return [ex.saliency(target=3, method=method, **opts), ex.project(LAYER, 2), ex.activation(LAYER)]


@pytest.fixture(scope="module")
def model() -> nn.Sequential:
    return dawdling_cnn()


def inputs(i: int) -> torch.Tensor:
    return seeded_randn(1, 3, SIDE, SIDE, seed=100 + i)


@pytest.mark.parametrize("method", available_methods())
def test_two_explainers_interleaved_equal_lone(model: nn.Sequential, method: str) -> None:
    before = snapshot(model)
    lone_a = requests(Explainer(model, inputs(0)), method)
    lone_b = requests(Explainer(model, inputs(1)), method)
    a = Explainer(model, inputs(0))  # create A, create B, then ask A, then B
    b = Explainer(model, inputs(1))
    got_a, got_b = requests(a, method), requests(b, method)
    for got, lone in ((got_a, lone_a), (got_b, lone_b)):
        assert all(torch.equal(g, r) for g, r in zip(got, lone, strict=True))
    assert not torch.equal(got_a[0], got_b[0])  # two different images: a shared result would show
    assert_unchanged(model, before)


def run_threads(work: Callable[[int], Any], n: int) -> list[Any]:
    """``work(i)`` in ``n`` threads that start together; results (or the exception raised) by index."""
    barrier = threading.Barrier(n, timeout=JOIN_S)
    out: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = work(i)
        except Exception as exc:  # noqa: BLE001 -- reported by the caller, with the index
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_S)
    assert not any(t.is_alive() for t in threads), "a session thread hung"
    return out


def mixed_work(model: nn.Module, i: int) -> tuple[list[torch.Tensor], list[sw.LayerInfo]]:
    """Thread ``i``'s requests: Explainer maps (occlusion with its traced plan in every third), one-shot calls."""
    x = inputs(i)
    method = ("gradient", "guided_backprop", "occlusion")[i % 3]
    ex = Explainer(model, x)
    maps = [*requests(ex, method), sw.saliency(model, x, method="deconvnet"), sw.project(model, x, LAYER, 3)]
    return maps, sw.layers(model, x)


def test_threads_equal_sequential(model: nn.Sequential) -> None:
    n = 6
    before = snapshot(model)
    expected = [mixed_work(model, i) for i in range(n)]
    for _ in range(2):
        got = run_threads(lambda i: mixed_work(model, i), n)
        for i in range(n):
            assert not isinstance(got[i], Exception), f"thread {i}: {got[i]!r}"
            maps, infos = got[i]
            assert all(torch.equal(g, e) for g, e in zip(maps, expected[i][0], strict=True)), f"thread {i} differs"
            assert infos == expected[i][1]
    assert_unchanged(model, before)
    assert sessions_in_eval(model) == 0


def test_user_hooks_fire_once_per_forward_in_every_thread(model: nn.Sequential) -> None:
    calls: list[str] = []
    lock = threading.Lock()

    def pre(mod: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor]:
        with lock:
            calls.append("pre")
        return (args[0] * 0.5,)

    def post(mod: nn.Module, args: Any, out: torch.Tensor) -> torch.Tensor:
        with lock:
            calls.append("post")
        return out + 0.25

    handles = [model[3].register_forward_pre_hook(pre), model[5].register_forward_hook(post)]
    try:
        before = snapshot(model)
        expected = [Explainer(model, inputs(i)).saliency(method="guided_backprop") for i in range(4)]
        calls.clear()
        got = run_threads(lambda i: Explainer(model, inputs(i)).saliency(method="guided_backprop"), 4)
        assert calls.count("pre") == calls.count("post") == 4  # one recorded forward per thread
        for g, e in zip(got, expected, strict=True):
            assert not isinstance(g, Exception), repr(g)
            assert torch.equal(g, e)
        # the hooks changed the map: they really ran inside the explained forward
        with torch.no_grad():
            plain = [h.remove() for h in handles]
            assert plain and not torch.equal(Explainer(model, inputs(0)).saliency(method="guided_backprop"), expected[0])
        handles = [model[3].register_forward_pre_hook(pre), model[5].register_forward_hook(post)]
        before = snapshot(model)
        Explainer(model, inputs(0)).saliency(method="occlusion", **FAST)
        assert_unchanged(model, before)
    finally:
        for h in handles:
            h.remove()


def test_recording_hooks_ignore_other_threads(model: nn.Sequential) -> None:
    # a capture open in this thread records nothing of a forward run by another thread
    cap = LayerCapture(model)
    with torch.no_grad(), eval_mode(model), cap:
        assert foreign_forward_hooks(model) == []  # the engine's own hooks are not the user's
        t = threading.Thread(target=lambda: model(inputs(1)))
        t.start()
        t.join(JOIN_S)
        assert cap.records == []
        model(inputs(0))
    assert [r.name for r in cap.records][:3] == ["0", "1", "2"]
    assert all(not m._forward_hooks for m in model.modules())


def test_eval_mode_restores_flags_when_sessions_overlap(model: nn.Sequential) -> None:
    # A enters, B enters, A leaves: the model stays in eval for B; B leaves: the flags come back
    flags = [m.training for m in model.modules()]
    a, b = eval_mode(model), eval_mode(model)
    a.__enter__()
    b.__enter__()
    a.__exit__(None, None, None)
    assert not any(m.training for m in model.modules())
    b.__exit__(None, None, None)
    assert [m.training for m in model.modules()] == flags
    assert sessions_in_eval(model) == 0


def test_eval_mode_restores_flags_after_an_exception(model: nn.Sequential) -> None:
    flags = [m.training for m in model.modules()]
    with pytest.raises(ZeroDivisionError), eval_mode(model), eval_mode(model):
        1 / 0  # noqa: B018
    assert [m.training for m in model.modules()] == flags
    assert sessions_in_eval(model) == 0


def test_foreign_forward_hooks_named() -> None:
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    assert foreign_forward_hooks(m) == []
    h1 = m[0].register_forward_hook(lambda *a: None)
    h2 = m.register_forward_pre_hook(lambda *a: None)
    h3 = torch.nn.modules.module.register_module_forward_hook(lambda *a: None)
    try:
        assert foreign_forward_hooks(m) == [
            "a global forward hook",
            "a forward pre-hook on the model itself (Sequential)",
            "a forward hook on '0' (Conv2d)",
        ]
    finally:
        for h in (h1, h2, h3):
            h.remove()
