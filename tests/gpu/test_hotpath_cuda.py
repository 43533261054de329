"""The per-method hot path on a GPU: no host sync beyond the one copy of the result; memory back to its level.

The hot path is what the widget runs on every method switch: ``Explainer.saliency(None,
method)`` on a recorded forward, for the three ReLU-rule maps. ``torch.cuda.set_sync_debug_mode
("error")`` turns any synchronising CUDA call inside it into an error; the copy of the result to
the host happens outside. The CPU twin (``test_hot_path_reads_no_tensor_value_on_the_host``)
catches the Python-level reads that would be syncs on a GPU (``bool()``, ``.item()``,
``.tolist()``, ...), so a new one fails in every CI run, not only on a lent GPU.
"""

from __future__ import annotations

import gc
import inspect
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch

import saliency_widget as sw
from saliency_widget.engine.degenerate import flush_degenerate
from saliency_widget.errors import DegenerateMapWarning
from tests.gpu.common import RULE_METHODS, gpu, model_and_inputs

# Tensor methods that read a value on the host (each a device->host copy and sync on a GPU).
HOST_READS = ("__bool__", "item", "tolist", "__int__", "__float__", "__index__", "numpy", "nonzero")
# The only place allowed to read on the CPU: the degenerate-map check, deferred on a GPU (engine/degenerate.py).
ALLOWED = {"check_degenerate"}


@pytest.mark.parametrize("method", RULE_METHODS)
def test_hot_path_reads_no_tensor_value_on_the_host(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model, x = model_and_inputs("cpu", torch.float32)
    ex = sw.Explainer(model, x)
    ex.saliency(None, method)  # warm
    seen: list[str] = []
    real = {n: getattr(torch.Tensor, n) for n in HOST_READS}

    def wrap(name: str) -> Callable[..., Any]:
        def read(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            caller = inspect.stack()[1]
            seen.append(f"{caller.function} ({caller.filename.rsplit('/', 1)[-1]}:{caller.lineno}) {name}")
            return real[name](self, *args, **kwargs)

        return read

    for name in HOST_READS:
        monkeypatch.setattr(torch.Tensor, name, wrap(name))
    out = ex.saliency(None, method)
    monkeypatch.undo()
    assert [s for s in seen if s.split(" ")[0] not in ALLOWED] == []
    assert any(s.startswith("check_degenerate") for s in seen)  # the proxy does see reads
    assert out.shape == x.shape


@pytest.mark.parametrize("method", RULE_METHODS)
@pytest.mark.gpu
@gpu[1]
def test_no_host_sync_in_the_per_method_hot_path(method: str) -> None:
    model, x = model_and_inputs("cuda", torch.float32)
    ex = sw.Explainer(model, x)
    ex.saliency(None, method)  # warm: the first call sets up cuDNN and the allocator
    torch.cuda.synchronize()
    before = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = ex.saliency(None, method)
    finally:
        torch.cuda.set_sync_debug_mode(before)
    host = out.cpu()  # the one copy of the result, outside the checked region
    assert host.shape == x.shape and bool(host.any())
    ref = ex.saliency(None, method).cpu()
    torch.testing.assert_close(host, ref)


@pytest.mark.gpu
@gpu[1]
def test_an_all_zero_map_on_cuda_still_warns_once_flushed() -> None:
    """The deferred degenerate check still warns: after the copy lands (flush) the warning is given."""
    model, x = model_and_inputs("cuda", torch.float32)
    with torch.no_grad():
        model[-1].weight.zero_()  # every logit constant: all-zero gradient maps
    ex = sw.Explainer(model, x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # (tests/conftest.py resets the once-per-condition memory)
        ex.saliency(None, "gradient")
        flush_degenerate()
    assert any(issubclass(w.category, DegenerateMapWarning) and "all zeros" in str(w.message) for w in caught)


# A leak of even one tensor per map shows as >= 100 x 512 bytes (the allocator's smallest block)
# after 100 maps; a one-off lazy allocation (a library workspace) fits within this slack.
SLACK = 16 * 1024


def _allocated() -> int:
    gc.collect()
    torch.cuda.synchronize()
    return torch.cuda.memory_allocated()


@pytest.mark.gpu
@gpu[1]
def test_memory_returns_to_its_level_after_100_one_shot_maps() -> None:
    model, x = model_and_inputs("cuda", torch.float32)
    methods = ("gradient", "deconvnet", "guided_backprop", "gradcam")
    for m in methods:  # warm: lazy per-method state is made once
        sw.saliency(model, x, method=m)
    flush_degenerate()
    level = _allocated()
    for i in range(100):
        out = sw.saliency(model, x, method=methods[i % len(methods)])
        del out
    flush_degenerate()
    assert _allocated() <= level + SLACK, f"{_allocated() - level} bytes more after 100 maps"


@pytest.mark.gpu
@gpu[1]
def test_memory_returns_to_its_level_after_100_maps_on_one_explainer() -> None:
    model, x = model_and_inputs("cuda", torch.float32)
    ex = sw.Explainer(model, x)
    for m in RULE_METHODS:
        ex.saliency(None, m)
    flush_degenerate()
    level = _allocated()
    for i in range(100):
        out = ex.saliency(None, RULE_METHODS[i % 3])
        del out
    flush_degenerate()
    assert _allocated() <= level + SLACK, f"{_allocated() - level} bytes more after 100 maps"
    del ex
    gc.collect()
