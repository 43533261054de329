"""One-shot functions: ``saliency``, ``project``, ``layers``.

Each runs its own forward pass and frees the graph afterwards. For interactive use with
many requests on the same image, use :class:`~saliency_widget.engine.session.Explainer`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .capture import LayerCapture, LayerInfo, layer_infos
from .checks import check_layer_key, check_model, eval_mode, prepare_inputs
from .keys import LayerKey
from .layouts import LayoutTracker
from .methods import RuleMethod
from .registry import get_method
from .rules import get_rule
from .session import Explainer

__all__ = ["layers", "project", "saliency"]


def saliency(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Any = None,
    method: str = "gradient",
    **options: Any,
) -> torch.Tensor:
    """Attribution of the target class score (the logit, before softmax) to each input pixel.

    Parameters
    ----------
    model
        Classifier returning logits ``(N, K)``; run in eval mode, never modified.
    inputs
        Float tensor ``(N, C, H, W)``, preprocessed for the model.
    target
        None (each sample's predicted class), an int, or a sequence / 1-D tensor of N ints.
    method
        ``"gradient"`` (Simonyan et al.), ``"deconvnet"`` (Zeiler & Fergus),
        ``"guided_backprop"`` (Springenberg et al.), or any other registered method.
    **options
        Method-specific options.

    Returns
    -------
    torch.Tensor
        Raw signed attribution, shape ``(N, C, H, W)``, on the inputs' device and dtype.
    """
    m = get_method(method)
    # Plain gradients need neither interception nor layer records; the ReLU-rule methods need
    # interception only; layer-based methods (Grad-CAM) need the records.
    rule_only = isinstance(m, RuleMethod)
    ex = Explainer(
        model,
        inputs,
        record_layers=not rule_only,
        intercept=m.needs_relu_rules,
        retain_graph=not m.single_backward,
    )
    return ex.saliency(target, method, **options)


def project(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str | LayerKey,
    channel: int,
    position: Any = None,
    call: int = 0,
    method: str = "deconvnet",
) -> torch.Tensor:
    """Zeiler-Fergus projection of one activation of ``layer`` back to pixel space.

    The forward pass stops right after ``layer`` (its ``call``-th execution); every activation
    of that output except ``(channel, y, x)`` is zeroed, the chosen one keeps its forward
    value, and the result is sent back to the input with ``method``'s ReLU rule.

    Parameters
    ----------
    model
        The network (not modified).
    inputs
        Float tensor ``(N, C, H, W)``.
    layer
        Dotted module name as in ``model.named_modules()`` (a ``"name#call"`` key or a
        :class:`~saliency_widget.engine.keys.LayerKey` also accepted).
    channel
        Channel (filter) index in the layer's output.
    position
        ``(y, x)``, an ``(N, 2)`` array, or None for each sample's strongest activation.
    call
        Which execution of a module that runs several times per forward.
    method
        ``"deconvnet"`` (default, as in the paper), ``"gradient"`` or ``"guided_backprop"``.

    Returns
    -------
    torch.Tensor
        Shape ``(N, C, H, W)``, on the inputs' device and dtype.
    """
    rule = get_rule(method)
    model = check_model(model)  # a compiled model: its original module
    key = check_layer_key(model, layer, call)
    ex = Explainer(model, inputs, stop_at=key, retain_graph=False)
    return ex.project(key, channel, position, method=rule.name)


def layers(model: nn.Module, inputs: torch.Tensor) -> list[LayerInfo]:
    """The inspectable layers in forward order, with name, call index, output shape and type.

    Parameters
    ----------
    model
        The network (not modified).
    inputs
        Float tensor ``(N, C, H, W)``; one sample is enough.

    Returns
    -------
    list of LayerInfo
        One entry per module execution with a tensor output of rank ≥ 2; a module that runs
        twice (ResNet's ``layer1.0.relu``) appears twice, with ``call`` 0 and 1. Each has its
        layout (``"NCHW"``, ``"NHWC"``, ``"tokens"``, ``"flat"``, ``"ambiguous"``) and reports
        ``shape`` as ``(C, H, W)`` for the three spatial layouts (``raw_shape`` as returned).
    """
    model = check_model(model)  # a compiled model: its original module
    x, _, _ = prepare_inputs(inputs[:1] if isinstance(inputs, torch.Tensor) and inputs.dim() == 4 else inputs, model)
    cap = LayerCapture(model)
    tracker = LayoutTracker()  # each layer's layout, followed from the input
    with torch.no_grad(), eval_mode(model), cap, tracker:
        x = x.detach()
        tracker.watch(x)
        model(x)
    return layer_infos(cap.records, lambda rec: tracker.layout_of(rec.tensor))
