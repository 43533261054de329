"""ReLU rules applied on the recorded autograd graph: a native forward, rules at backward time.

Every ReLU form (``nn.ReLU``, ``F.relu``, ``torch.relu_``, ``x.relu()``, in place or not)
leaves one ``ReluBackward0`` node in the autograd graph, whose saved output ``relu(x)`` gives
the forward mask. Instead of routing each ReLU call through a Python
:class:`~saliency_widget.engine.intercept.ReLUInterceptor` (a TorchFunctionMode that adds
Python work to *every* torch call of the forward, and a Python ``autograd.Function`` per ReLU),
the forward runs natively and :class:`GraphRules` walks the graph it left once, putting a post
hook on each ReLU node. At backward time the node computes autograd's own ``R * (x > 0)`` and
the hook turns it into the current rule of a shared
:class:`~saliency_widget.engine.intercept.RuleBox` (see :mod:`.rules`):

=================  ===================================================
gradient           the node's own result (the hook returns None)
deconvnet          ``relu(R)`` from the incoming signal
guided_backprop    the node's result with its negative part zeroed
=================  ===================================================

The hooks live on the nodes of the Explainer's own forward (never on the model, its parameters
or their gradient accumulators) and go with that graph. A ReLU node made outside that forward
(a tensor the model cached from an earlier pass) is left alone: its sequence number, which
autograd counts up per thread, is outside the forward's. An in-place op on a view hides its
function inside a ``CopySlices`` node where no hook can reach it; :attr:`GraphRules.hidden`
then tells the caller to use the interceptor instead.
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Any

import torch

from .intercept import RuleBox, check_relu_rule
from .rules import ReLURule

__all__ = ["GraphRules"]

_BASE_BACKWARD = ReLURule.backward

# autograd node name -> the activation's name in messages (the interceptor's names)
_ACTIVATION_NODES: dict[str, str] = {
    "HardtanhBackward0": "Hardtanh",
    "EluBackward0": "ELU",
    "LeakyReluBackward0": "LeakyReLU",
    "CeluBackward0": "CELU",
    "GeluBackward0": "GELU",
    "SiluBackward0": "SiLU",
    "MishBackward0": "Mish",
    "HardswishBackward0": "Hardswish",
    "SoftplusBackward0": "Softplus",
    "PreluKernelBackward0": "PReLU",
    "RreluWithNoiseBackward0": "RReLU",
    "GluBackward0": "GLU",
    "TanhBackward0": "Tanh",
    "SigmoidBackward0": "Sigmoid",
}


def _activation(node: Any, name: str) -> str:
    """The non-ReLU activation a node of :data:`_ACTIVATION_NODES` is the backward of."""
    if name == "HardtanhBackward0" and (node._saved_min_val, node._saved_max_val) == (0, 6):
        return "ReLU6"
    if name == "EluBackward0" and node._saved_scale != 1:  # F.selu is elu with a scale
        return "SELU"
    return _ACTIVATION_NODES[name]


class _Outputs:
    """The hooks' shared state: the box, and each ReLU's forward output for rules that need it."""

    __slots__ = ("box", "outs")

    def __init__(self, box: RuleBox) -> None:
        self.box = box
        self.outs: list[torch.Tensor | None] = []


def _apply(state: _Outputs, index: int, grad_inputs: Any, grad_outputs: Any) -> Any:
    """Post hook of one ReLU node: autograd's ``R * (x > 0)`` -> the box's rule.

    Holds no reference to the node (a node -> hook -> node cycle would outlive the graph).
    """
    rule = state.box.rule
    masked, grad = grad_inputs[0], grad_outputs[0]
    if masked is None or grad is None:
        return None
    if type(rule).backward is not _BASE_BACKWARD:  # a rule with its own arithmetic needs relu(x)
        return (rule.backward(grad, state.outs[index]),)
    if rule.forward_mask:
        # guided backprop: the signal mask in place on the node's fresh result (never on the
        # incoming grad, which autograd may share between branches): no further allocation
        return (masked.clamp_(min=0),) if rule.signal_mask else None
    return (grad.clamp(min=0) if rule.signal_mask else grad,)


class GraphRules:
    """The ReLU nodes of one recorded forward, each with a hook that applies ``box.rule``.

    Parameters
    ----------
    box
        Holder of the rule applied at backward time.
    first, last
        The sequence numbers (:meth:`torch.autograd.graph.Node._sequence_nr`) of two nodes
        made just before and just after the forward, in its thread: only ReLU nodes between
        them are the forward's own.

    Attributes
    ----------
    relu_calls
        Number of ReLU nodes found (one per ReLU call with autograd recording).
    other_activations
        Count of nodes per non-ReLU activation name (these keep their plain gradient).
    hidden
        True when an in-place op on a view (a ``CopySlices`` node) may hide a ReLU.
    """

    def __init__(self, box: RuleBox, first: int, last: int) -> None:
        self.box = box
        self.relu_calls = 0
        self.other_activations: Counter[str] = Counter()
        self.hidden = False
        self._range = (first, last)
        self._seen: set[Any] = set()
        self._relus: list[Any] = []
        self._state = _Outputs(box)

    def cover(self, *roots: Any) -> None:
        """Walk the graph behind ``roots`` (tensors, gradient edges or nodes) and hook each new ReLU node."""
        seen = self._seen
        stack = []
        for r in roots:
            node = r.grad_fn if isinstance(r, torch.Tensor) else getattr(r, "node", r)
            if node is not None and node not in seen:
                stack.append(node)
        first, last = self._range
        others = _ACTIVATION_NODES
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            name = node.name()
            if name == "ReluBackward0":
                if first < node._sequence_nr() < last:
                    node.register_hook(partial(_apply, self._state, len(self._relus)))
                    self._relus.append(node)
                    self._state.outs.append(None)
                    self.relu_calls += 1
            elif name == "torch::autograd::CopySlices":
                self.hidden = True
            elif name in others:
                self.other_activations[_activation(node, name)] += 1
            for nxt, _ in node.next_functions:
                if nxt is not None and nxt not in seen:
                    stack.append(nxt)

    def prepare(self, rule: ReLURule) -> None:
        """Before a backward with ``rule``: give a rule with its own arithmetic each ReLU's output."""
        if type(rule).backward is _BASE_BACKWARD:
            return
        outs = self._state.outs
        for i, node in enumerate(self._relus):
            if outs[i] is None:
                try:
                    outs[i] = node._saved_result.detach()  # detached: no tensor -> node -> hook cycle
                except RuntimeError:  # freed or overwritten; the rule says so if it needs it
                    outs[i] = None

    def check_rule(self, rule: ReLURule, model_name: str, *, ran_to_end: bool = True) -> None:
        """As :meth:`ReLUInterceptor.check_rule <saliency_widget.engine.intercept.ReLUInterceptor.check_rule>`."""
        check_relu_rule(rule, model_name, self.relu_calls, self.other_activations, ran_to_end=ran_to_end)
