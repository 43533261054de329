"""The analyses panel: top-9 per filter, sanity checks and the pointing game, as a widget.

The figures themselves (PNG) live in :mod:`saliency_widget.viz.figures`; they are re-exported
here for notebooks written against this module.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Sequence
from typing import Any

import ipywidgets as W
from torch import nn

from ..analysis import MiningIndex, TopActivations, load_index, pointing_game, sanity_check, top_activations
from ..errors import SaliencyError
from ..viz.figures import sanity_gallery_png, sanity_plot_png, topk_grid_png
from ..viz.images import describe_model
from ..viz.report import message_html

__all__ = ["AnalysisPanel", "IndexedTop", "attach_index", "sanity_gallery_png", "sanity_plot_png", "topk_grid_png"]


class AnalysisPanel(W.VBox):
    """Buttons for the three analyses on a model, each with a progress bar and its result.

    Parameters
    ----------
    model
        The classifier (default: the bundled shapes model).
    dataset_size
        Images of the bundled shapes data used by top-9 and the pointing game.
    mean, std
        Per-channel normalisation of the inputs, to show top-9 patches in colour (default:
        what :func:`~saliency_widget.viz.images.describe_model` reads from the model's
        weights; patches are min-max scaled when the model states none).
    """

    def __init__(self, model: nn.Module | None = None, dataset_size: int = 256, mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> None:
        from ..data import ShapesDataset
        from ..models import shapes_cnn

        self.model = model if model is not None else shapes_cnn()
        # Undo the normalisation only when the model states it: the shapes data shown here is
        # not in an unknown model's preprocessing, so such patches are min-max scaled instead.
        io = describe_model(self.model)
        known = io.source == "weights"
        self.mean = mean if mean is not None else (io.mean if known else None)
        self.std = std if std is not None else (io.std if known else None)
        self.dataset = ShapesDataset(dataset_size, seed=2024)
        convs = [n for n, m in self.model.named_modules() if isinstance(m, (nn.ReLU,))]
        self.w_layer = W.Dropdown(options=convs, value=convs[len(convs) // 2] if convs else None, description="layer")
        self.w_filter = W.IntSlider(0, min=0, max=0, description="filter")
        self.w_topk = W.Button(description="top-9 per filter", icon="th")
        self.w_sanity = W.Button(description="sanity check", icon="random")
        self.w_pointing = W.Button(description="pointing game", icon="crosshairs")
        self.w_progress = W.FloatProgress(0.0, min=0.0, max=1.0, description="idle")
        self.w_out_img = W.Image(format="png")
        self.w_out_html = W.HTML()
        self.result: Any = None
        self._lock = threading.Lock()
        super().__init__([
            W.HBox([self.w_layer, self.w_filter]),
            W.HBox([self.w_topk, self.w_sanity, self.w_pointing]),
            self.w_progress, self.w_out_html, self.w_out_img,
        ])
        self.w_topk.on_click(lambda _b: self.run("topk"))
        self.w_sanity.on_click(lambda _b: self.run("sanity"))
        self.w_pointing.on_click(lambda _b: self.run("pointing"))
        self.w_filter.observe(lambda _c: self._show_topk(), names="value")

    #: A mined top-k index (:func:`attach_index`): top-9 of its layers is read from it, never rescanned.
    index: MiningIndex | None = None

    def _progress(self, done: float, label: str) -> None:
        self.w_progress.value = max(0.0, min(1.0, done))
        self.w_progress.description = label

    def run(self, which: str) -> Any:
        """Run one analysis (``"topk"``, ``"sanity"`` or ``"pointing"``) and show its result."""
        if not self._lock.acquire(blocking=False):
            self.w_out_html.value = message_html("an analysis is already running", "note")
            return None
        try:
            if which == "topk" and indexed_top(self) is not None:
                self.result = indexed_top(self)
                self._show_topk()
            elif which == "topk":
                n = len(self.dataset)
                res: Any = top_activations(
                    self.model, self._batches(), self.w_layer.value, k=9, progress=False,
                    on_progress=lambda seen, rate: self._progress(seen / n, f"{rate:.0f} img/s"),
                )
                self.result = res
                self.w_filter.max = len(res.channels) - 1
                self._show_topk()
            elif which == "sanity":
                import torch

                x = torch.stack([self.dataset[i][0] for i in range(4)])
                results = []
                for k, m in enumerate(("gradient", "guided_backprop")):
                    self._progress(k / 2, m)
                    results.append(sanity_check(self.model, x, method=m))
                self.result = results
                self.w_out_img.value = sanity_plot_png(results)
                self.w_out_html.value = "<pre>" + html.escape("\n\n".join(f"{r.method}\n{r.table()}" for r in results)) + "</pre>"
            elif which == "pointing":
                if getattr(self.model, "saliency_weights", None) is None:
                    raise SaliencyError(
                        "the pointing game here uses the bundled shapes data and its object masks, which only the "
                        "bundled model classifies; for your model call saliency_widget.analysis.pointing_game(model, "
                        "your_loader_of_(images, labels, masks))"
                    )
                self._progress(0.1, "pointing")
                res = pointing_game(self.model, self._batches(), methods=["gradient", "deconvnet", "guided_backprop", "gradcam"], tolerance=1)
                self.result = res
                self.w_out_html.value = "<pre>" + html.escape(res.table()) + "</pre>"
                self.w_out_img.value = b""
            else:
                raise SaliencyError(f"unknown analysis {which!r}; expected 'topk', 'sanity' or 'pointing'")
            self._progress(1.0, "done")
            return self.result
        except SaliencyError as err:
            self.w_out_html.value = message_html(str(err), "error")
            self._progress(0.0, "error")
            return None
        finally:
            self._lock.release()

    def _batches(self) -> Any:
        from torch.utils.data import DataLoader

        return DataLoader(self.dataset, batch_size=64, shuffle=False)

    def _show_topk(self) -> None:
        res = self.result
        if isinstance(res, IndexedTop):
            show_indexed(self, res)
            return
        if not isinstance(res, TopActivations):
            return
        c = res.channels[min(self.w_filter.value, len(res.channels) - 1)]
        self.w_out_img.value = topk_grid_png(res, c, self.mean, self.std)
        row = res.channels.index(c)
        self.w_out_html.value = (
            f"<b>{html.escape(res.layer)}</b> filter {c}: strongest {float(res.values[row, 0]):.3f}; "
            f"{res.images_seen} images scanned in {res.seconds:.1f} s"
        )


# ---------------------------------------------------------------- top-9 from a mined index
class IndexedTop:
    """The top-9 result of a layer read from a mined index (no scan): ``layer``, ``channels``, ``index``."""

    def __init__(self, index: MiningIndex, layer: str) -> None:
        self.index = index
        self.layer = layer
        self.channels = index.channels(layer)


def indexed_top(panel: AnalysisPanel) -> IndexedTop | None:
    """The panel's top-9 source: its index when that holds the chosen layer, else None (scan)."""
    if panel.index is None or panel.w_layer.value not in panel.index.layers:
        return None
    return IndexedTop(panel.index, panel.w_layer.value)


def show_indexed(panel: AnalysisPanel, res: IndexedTop) -> None:
    """Show one filter's grid and its strongest value from the index."""
    c = res.channels[min(panel.w_filter.value, len(res.channels) - 1)]
    panel.w_filter.max = len(res.channels) - 1
    panel.w_out_img.value = res.index.grid_png(res.layer, c)
    top = res.index.top(res.layer, c)
    panel.w_out_html.value = (
        f"<b>{html.escape(res.layer)}</b> filter {c}: strongest {top[0].value:.3f}; "
        f"from the index {html.escape(str(res.index.root))} (top-{res.index.k}, no rescan)"
    )


def attach_index(explorer: Any, index: Any) -> AnalysisPanel:
    """Give ``explorer`` an analyses panel that reads top-9 from a mined index and follows its layer and filter.

    Parameters
    ----------
    explorer
        The :class:`~saliency_widget.widget.explorer.Explorer`.
    index
        An index directory or a :class:`~saliency_widget.analysis.MiningIndex`; it must have been
        mined with the explorer's model (else :class:`~saliency_widget.errors.ModelError`).
    """
    idx = index if isinstance(index, MiningIndex) else load_index(index)
    idx.check_model(explorer._model)
    panel = AnalysisPanel(explorer._model, mean=explorer._io.mean, std=explorer._io.std)
    panel.index = idx
    layers = list(dict.fromkeys([*idx.layers, *panel.w_layer.options]))
    panel.w_layer.options = layers
    panel.w_layer.value = explorer.layer if explorer.layer in idx.layers else idx.layers[0]
    explorer.analysis_panel = panel
    explorer.ui.w_analyses.children = [panel]

    def follow(_change: Any = None) -> None:
        if explorer.layer in idx.layers:
            panel.w_layer.value = explorer.layer
            panel.w_filter.max = len(idx.channels(explorer.layer)) - 1
            panel.w_filter.value = min(explorer.channel, panel.w_filter.max)
            panel.run("topk")

    explorer.observe(follow, names=["layer", "channel"])
    follow()
    return panel
