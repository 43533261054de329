"""The scan pass's forward: one model run to the deepest requested layer, activations as ``(B, C, h, w)``.

:func:`~saliency_widget.analysis.mining.mine` feeds it every batch of the data. The first batch
fixes each layer's layout (NCHW, NHWC or tokens, read by
:func:`~saliency_widget.engine.capture.layer_layout`) and where the forward may stop; later
batches run only up to the last requested layer execution. Hooks live only inside the pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..engine.capture import LayerCapture, StopForward, layer_layout
from ..engine.checks import eval_mode
from ..engine.keys import LayerKey
from ..engine.layouts import Layout, to_nchw
from ..errors import LayerError

__all__ = ["LayerScanner"]


class LayerScanner:
    """One forward pass to the deepest requested layer, hooks only inside ``with`` (the model is untouched).

    Parameters
    ----------
    model
        The network (eval mode inside each pass; its state is restored after).
    keys
        The layer executions whose outputs a call returns.
    """

    def __init__(self, model: nn.Module, keys: Sequence[LayerKey]) -> None:
        self.model = model
        self.keys = list(keys)
        self.stop: tuple[str, int] | None = None
        self.layouts: dict[LayerKey, Layout] = {}

    def _capture(self, x: torch.Tensor) -> dict[LayerKey, torch.Tensor]:
        cap = LayerCapture(self.model, names=sorted({k.name for k in self.keys}), stop_at=self.stop)
        with eval_mode(self.model), cap:
            try:
                self.model(x)
            except StopForward:
                pass
        got = {LayerKey(r.name, r.call): r.tensor for r in cap.records}
        if self.stop is None:  # first batch: stop after the last requested execution from now on
            order = [LayerKey(r.name, r.call) for r in cap.records]
            missing = [str(k) for k in self.keys if k not in got]
            if missing:
                raise LayerError(f"layer(s) {missing} did not run in the forward pass")
            last = max(order.index(k) for k in self.keys)
            self.stop = (order[last].name, order[last].call)
        return {k: got[k] for k in self.keys}

    def __call__(self, x: torch.Tensor) -> dict[LayerKey, torch.Tensor]:
        """The activations of a batch.

        Parameters
        ----------
        x
            ``(B, C, H, W)`` model inputs.

        Returns
        -------
        dict
            ``{key: (B, C, h, w)}`` activations per requested layer (NHWC and token layouts turned to NCHW).

        Raises
        ------
        LayerError
            A layer did not run, has an ambiguous layout, or does not output a grid.
        """
        if not self.layouts:
            for k in self.keys:
                lay = layer_layout(self.model, x[:1], k.name, k.call)
                if lay.kind == "ambiguous":
                    raise LayerError(f"layer {str(k)!r} has an ambiguous layout (not channels x grid); mining needs NCHW, NHWC or tokens")
                self.layouts[k] = lay
        with torch.no_grad():
            acts = self._capture(x)
        out = {}
        for k, a in acts.items():
            lay = self.layouts[k]
            a = to_nchw(a, lay) if lay.kind in ("NHWC", "tokens") else a
            if a.dim() != 4:
                raise LayerError(f"layer {str(k)!r} outputs {tuple(a.shape)}; mining needs (B, C, h, w)")
            out[k] = a
        return out
