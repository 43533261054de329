"""Property-based hygiene: random small CNNs x random call sequences x injected faults.

Whatever the architecture (every ReLU form, reused modules, in-place ops, max/avg pooling,
BatchNorm/Dropout in train mode) and whatever sequence of calls, including calls that fail
part-way (an exception in a forward hook, an exception in the middle of backward, a
KeyboardInterrupt), the model's state_dict, training flags, requires_grad flags and hook
dicts are exactly as before, no TorchFunctionMode stays active and no global module hook
remains; and a clean call afterwards gives the same map as before the sequence.

Seeded (``derandomize=True``) so a failure reproduces; ``max_examples`` keeps it < 60 s.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import saliency_widget as sw
from tests.helpers import assert_unchanged, snapshot

RELU_FORMS = ("module", "module_inplace", "shared_module", "F.relu", "F.relu_inplace", "torch.relu_", "x.relu()", "x.relu_()")
POOLS = ("none", "max", "avg")
METHODS = ("gradient", "deconvnet", "guided_backprop", "gradcam", "guided_gradcam", "gradcampp", "xgradcam", "layercam", "eigencam",
           "scorecam", "input_x_gradient")


class Injected(Exception):
    """The fault the test injects (an ordinary exception)."""


class FailInBackward(torch.autograd.Function):
    """Identity forward; raises ``ctx.exc`` in the middle of the backward pass."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, exc: type[BaseException]) -> torch.Tensor:  # type: ignore[override]
        ctx.exc = exc
        return x.clone()

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> Any:  # type: ignore[override]
        raise ctx.exc("injected in the middle of backward")


@dataclass(frozen=True)
class Block:
    out: int
    relu: str
    pool: str
    inplace_op: bool
    batchnorm: bool


class RandomCNN(nn.Module):
    """conv -> [bn] -> [in-place op] -> ReLU (some form) -> [pool], repeated; then mean + linear."""

    def __init__(self, blocks: tuple[Block, ...], dropout: bool, classes: int = 3) -> None:
        super().__init__()
        self.blocks = blocks
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleDict()
        self.relus = nn.ModuleDict()
        self.shared = nn.ReLU()  # reused by every "shared_module" block
        c = 3
        for i, b in enumerate(blocks):
            self.convs.append(nn.Conv2d(c, b.out, 3, padding=1))
            if b.batchnorm:
                self.bns[str(i)] = nn.BatchNorm2d(b.out)
            if b.relu in ("module", "module_inplace"):
                self.relus[str(i)] = nn.ReLU(inplace=b.relu == "module_inplace")
            c = b.out
        self.drop = nn.Dropout(0.3) if dropout else nn.Identity()
        self.fc = nn.Linear(c, classes)
        self.fault: tuple[str, type[BaseException]] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, b in enumerate(self.blocks):
            x = self.convs[i](x)
            if b.batchnorm:
                x = self.bns[str(i)](x)
            if b.inplace_op:
                x.mul_(1.5).add_(0.05)
            if self.fault is not None and self.fault[0] == "backward" and i == len(self.blocks) - 1:
                x = FailInBackward.apply(x, self.fault[1])
            x = self._relu(i, b.relu, x)
            if b.pool == "max":
                x = F.max_pool2d(x, 2)
            elif b.pool == "avg":
                x = F.avg_pool2d(x, 2)
        return self.fc(self.drop(x.mean((2, 3))))

    def _relu(self, i: int, form: str, x: torch.Tensor) -> torch.Tensor:
        if form in ("module", "module_inplace"):
            return self.relus[str(i)](x)
        if form == "shared_module":
            return self.shared(x)
        if form == "F.relu":
            return F.relu(x)
        if form == "F.relu_inplace":
            return F.relu(x, inplace=True)
        if form == "torch.relu_":
            torch.relu_(x)  # return value ignored on purpose: in place
            return x
        if form == "x.relu()":
            return x.relu()
        x.relu_()
        return x


blocks_st = st.builds(
    Block,
    out=st.integers(2, 4),
    relu=st.sampled_from(RELU_FORMS),
    pool=st.sampled_from(POOLS),
    inplace_op=st.booleans(),
    batchnorm=st.booleans(),
)

# One call of the sequence. Integers are reduced modulo the real sizes when the call runs.
call_st = st.one_of(
    st.tuples(st.just("saliency"), st.sampled_from(METHODS), st.integers(0, 2)),
    st.tuples(st.just("project"), st.integers(0, 99), st.integers(0, 99), st.sampled_from(("deconvnet", "gradient", "guided_backprop")), st.booleans()),
    st.tuples(st.just("explainer"), st.lists(st.sampled_from(METHODS), min_size=1, max_size=3), st.integers(0, 99)),
    st.tuples(st.just("layers")),
    st.tuples(
        st.just("fault"),
        st.sampled_from(("forward_hook", "backward")),
        st.sampled_from((Injected, KeyboardInterrupt)),
        st.sampled_from(("saliency", "explainer", "project")),
        st.integers(0, 99),
    ),
)


def _spatial(model: nn.Module, x: torch.Tensor) -> list[Any]:
    return [i for i in sw.layers(model, x) if len(i.shape) == 3]


def _run(model: RandomCNN, x: torch.Tensor, call: tuple[Any, ...], spatial: list[Any]) -> None:
    kind = call[0]
    if kind == "saliency":
        out = sw.saliency(model, x, target=call[2], method=call[1])
        assert out.shape == x.shape
    elif kind == "project":
        info = spatial[call[1] % len(spatial)]
        c, h, w = info.shape
        pos = (call[2] % h, (call[2] // 3) % w) if call[4] else None
        out = sw.project(model, x, info.name, call[2] % c, position=pos, call=info.call, method=call[3])
        assert out.shape == x.shape
    elif kind == "explainer":
        ex = sw.Explainer(model, x)
        for m in call[1]:
            ex.saliency(target=call[2] % 3, method=m)
        info = spatial[call[2] % len(spatial)]
        ex.project(info.name, call[2] % info.shape[0], call=info.call)
        ex.activation(info.name, call=info.call)
        assert len(ex.layers) >= len(spatial)
    elif kind == "layers":
        assert [i.key for i in _spatial(model, x)] == [i.key for i in spatial]
    else:
        _, where, exc, api, seed = call
        info = spatial[seed % len(spatial)]
        handle = None
        if where == "forward_hook":
            target = dict(model.named_modules())[info.name]

            def hook(*_a: Any) -> None:
                raise exc("injected in a forward hook")

            handle = target.register_forward_hook(hook)
        else:
            model.fault = ("backward", exc)
        try:
            try:
                if api == "saliency":
                    sw.saliency(model, x, method="guided_backprop")
                elif api == "explainer":
                    sw.Explainer(model, x).saliency(method="deconvnet")
                else:
                    # a projection's backward goes through the failing node only if the layer
                    # comes after it; then it must fail, otherwise it may succeed
                    sw.project(model, x, info.name, 0, call=info.call)
                    if where == "forward_hook":
                        raise AssertionError("the forward hook fault was not raised")
                    return
            except exc:
                return
            raise AssertionError(f"injected {exc.__name__} ({where}) was swallowed")
        finally:
            if handle is not None:
                handle.remove()
            model.fault = None


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    blocks=st.lists(blocks_st, min_size=1, max_size=3).map(tuple),
    dropout=st.booleans(),
    train=st.sampled_from(("eval", "train", "mixed")),
    frozen=st.booleans(),
    calls=st.lists(call_st, min_size=1, max_size=6),
    seed=st.integers(0, 2**16),
)
def test_random_models_and_call_sequences_leave_no_trace(
    blocks: tuple[Block, ...], dropout: bool, train: str, frozen: bool, calls: list[tuple[Any, ...]], seed: int
) -> None:
    torch.manual_seed(seed)
    model = RandomCNN(blocks, dropout)
    model.train(train != "eval")
    if train == "mixed":
        model.convs.eval()
    if frozen:
        model.convs[0].weight.requires_grad_(False)
    model.fc.register_forward_hook(lambda *a: None)  # the user's own hook must stay, alone
    x = torch.randn(2, 3, 8, 8)
    x_before = x.clone()
    stack = torch._C._len_torch_function_stack()
    before = snapshot(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate-map warnings on random nets are expected
        spatial = _spatial(model, x)
        reference = sw.saliency(model, x, target=0, method="guided_backprop")
        for call in calls:
            _run(model, x, call, spatial)
            assert torch._C._len_torch_function_stack() == stack, f"mode left active after {call}"
            assert_unchanged(model, before)
            torch.testing.assert_close(x, x_before, rtol=0, atol=0)
        # after everything (faults included) the same call gives the same map
        torch.testing.assert_close(sw.saliency(model, x, target=0, method="guided_backprop"), reference)
    # and plain autograd through torch.relu is ordinary again
    t = torch.tensor([-1.0, 2.0], requires_grad=True)
    (g,) = torch.autograd.grad(torch.relu(t), t, torch.tensor([5.0, -3.0]))
    torch.testing.assert_close(g, torch.tensor([0.0, -3.0]))
