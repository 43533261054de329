"""The analyses panel: top-9 per filter, faithfulness with the sanity check beside it, pointing game.

Results show as HTML tables (:mod:`saliency_widget.viz.tables`), never as markdown pipes; a
panel without a picture shows a message instead of an empty image; every new result or error
replaces the old picture. Top-9 scans the data chosen in the panel
(:func:`~.datasource.choose_data`), named in the panel. The figures themselves (PNG) live in
:mod:`saliency_widget.viz.figures`; they are re-exported here for notebooks written against
this module.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import ipywidgets as W
import torch
from PIL import Image
from torch import nn

from ..analysis import MiningIndex, TopActivations, load_index, pointing_game, sanity_check, top_activations
from ..engine.progress import reporting
from ..errors import InputError, SaliencyError
from ..views.classes import class_name
from ..viz.figures import sanity_gallery_png, sanity_plot_png, topk_grid_png
from ..viz.images import describe_model
from ..viz.report import message_html
from ..viz.tables import markdown_table_html
from .datasource import FOLDER, DataChoice, choose_data, data_options, is_bundled
from .faithpanel import FaithfulnessPanel, FaithRequest, request_from_explorer

__all__ = ["AnalysisPanel", "IndexedTop", "attach_index", "sanity_gallery_png", "sanity_plot_png", "topk_grid_png"]

_HIDDEN, _SHOWN = "none", ""


class AnalysisPanel(W.VBox):
    """Buttons for the analyses on a model, each with a progress bar and its result.

    Parameters
    ----------
    model
        The classifier (default: the bundled shapes model).
    dataset_size
        Images of the bundled shapes data used by top-9 (when chosen) and the pointing game.
    mean, std
        Per-channel normalisation of the inputs, to show top-9 patches in colour (default:
        what :func:`~saliency_widget.viz.images.describe_model` reads from the model's
        weights; patches are min-max scaled when the model states none).
    data
        What ``explore(data=...)`` received (a folder path, a Dataset, a DataLoader, an
        ``(N, C, H, W)`` tensor); None: the bundled scenes for the bundled model, no data for
        any other until the user chooses some.
    transform
        PIL image -> ``(C, H, W)`` for images of a chosen folder (default: the model's, read
        by ``describe_model``).
    explorer
        The :class:`~.explorer.Explorer` whose current image, class and method the
        faithfulness analysis and the sanity check use (None: the first image of the data).
    """

    def __init__(
        self,
        model: nn.Module | None = None,
        dataset_size: int = 256,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        *,
        data: Any = None,
        transform: Callable[[Image.Image], torch.Tensor] | None = None,
        explorer: Any = None,
    ) -> None:
        from ..data import ShapesDataset
        from ..models import load_model

        self.model = load_model(model)
        # Undo the normalisation only when the model states it: the shapes data shown here is
        # not in an unknown model's preprocessing, so such patches are min-max scaled instead.
        io = describe_model(self.model)
        known = io.source == "weights"
        self.mean = mean if mean is not None else (io.mean if known else None)
        self.std = std if std is not None else (io.std if known else None)
        self.transform = transform if transform is not None else io.transform
        self.dataset_size = dataset_size
        self.dataset = ShapesDataset(dataset_size, seed=2024)  # the pointing game's scenes and masks
        self.data = data
        self.explorer = explorer
        self._lock: Any = getattr(explorer, "compute_lock", None) or threading.RLock()
        convs = [n for n, m in self.model.named_modules() if isinstance(m, (nn.ReLU,))]
        self.w_layer = W.Dropdown(options=convs, value=convs[len(convs) // 2] if convs else None, description="layer")
        self.w_filter = W.IntSlider(0, min=0, max=0, description="filter")
        opts = data_options(self.model, data)
        default = opts[0][1] if data is not None or is_bundled(self.model) else None
        self.w_data = W.Dropdown(options=[("(choose data)", None), *opts] if default is None else opts, value=default, description="data")
        self.w_folder = W.Text(placeholder="path/to/a/folder/of/images", description="folder", continuous_update=False)
        self.w_folder.layout.display = _HIDDEN
        self.w_data_note = W.HTML()
        self.w_topk = W.Button(description="top-9 per filter", icon="th")
        self.w_sanity = W.Button(description="sanity check", icon="random")
        self.w_pointing = W.Button(description="pointing game", icon="crosshairs")
        self.w_progress = W.FloatProgress(0.0, min=0.0, max=1.0, description="idle")
        self.w_out_img = W.Image(format="png")
        self.w_out_img.layout.display = _HIDDEN
        self.w_out_html = W.HTML()
        # the sanity check's own output, beside the faithfulness curves of the same image
        self.w_sanity_img = W.Image(format="png", layout=W.Layout(max_width="420px"))
        self.w_sanity_img.layout.display = _HIDDEN
        self.w_sanity_html = W.HTML()
        self.faithfulness = FaithfulnessPanel(
            self.model, self._faith_request, lock=self._lock,
            yield_to=(lambda: explorer.wait(timeout=30)) if explorer is not None else None,
        )
        self.result: Any = None
        self._topk_data = ""
        self._busy = threading.Lock()
        self.w_data.observe(lambda _c: self._on_data(), names="value")
        self.w_folder.observe(lambda _c: self._on_data(), names="value")
        self._on_data()
        super().__init__([
            W.HBox([self.w_layer, self.w_filter]),
            W.HBox([self.w_data, self.w_folder]), self.w_data_note,
            W.HBox([self.w_topk, self.w_pointing]),
            self.w_progress, self.w_out_html, self.w_out_img,
            W.HTML("<b>this image</b>: faithfulness of its maps (deletion / insertion, RISE) and the sanity check"),
            W.HBox(
                [self.faithfulness, W.VBox([self.w_sanity, self.w_sanity_html, self.w_sanity_img])],
                layout=W.Layout(flex_flow="row wrap"),
            ),
        ])
        self.w_topk.on_click(lambda _b: self.run("topk"))
        self.w_sanity.on_click(lambda _b: self.run("sanity"))
        self.w_pointing.on_click(lambda _b: self.run("pointing"))
        self.w_filter.observe(lambda _c: self._show_topk(), names="value")

    # ------------------------------------------------------------------ data
    def data_choice(self) -> DataChoice:
        """The data top-9 scans now (raises InputError for a bad folder)."""
        return choose_data(
            self.model, self.w_data.value, given=self.data, folder=self.w_folder.value, transform=self.transform,
            bundled_size=self.dataset_size,
        )

    def _on_data(self) -> None:
        self.w_folder.layout.display = _SHOWN if self.w_data.value == FOLDER else _HIDDEN
        try:
            note = "top-9 scans: " + html.escape(self.data_choice().description)
        except InputError as err:
            note = "top-9 data: " + html.escape(str(err))
        self.w_data_note.value = f"<small>{note}</small>"

    # ------------------------------------------------------------------ output
    def _show(self, png: bytes | None, body_html: str, where: str = "main") -> None:
        """Replace a result: a picture (or none, hidden: no broken-image icon) and its HTML.

        ``where``: ``"main"`` (top-9, pointing game) or ``"sanity"`` (beside the faithfulness curves).
        """
        img, out = (self.w_sanity_img, self.w_sanity_html) if where == "sanity" else (self.w_out_img, self.w_out_html)
        if png:
            img.value = png
            img.layout.display = _SHOWN
        else:
            img.value = b""
            img.layout.display = _HIDDEN
        out.value = body_html

    def _progress(self, done: float, label: str) -> None:
        self.w_progress.value = max(0.0, min(1.0, done))
        self.w_progress.description = label

    def _faith_request(self) -> FaithRequest:
        if self.explorer is not None:
            return request_from_explorer(self.explorer)
        x = self._first_images(1)
        with torch.no_grad():
            t = int(self.model(x).argmax(1)[0])
        return FaithRequest(x, t, ("gradient",), class_name(None, t))

    def _first_images(self, n: int) -> torch.Tensor:
        choice = self.data_choice()
        if choice.batches is None:
            raise InputError(choice.description)
        got: list[torch.Tensor] = []
        for b in choice.batches():
            b = b[0] if isinstance(b, (tuple, list)) else b
            got += list(b[: n - len(got)])
            if len(got) >= n:
                break
        if not got:
            raise InputError(f"the chosen data ({choice.description}) holds no image")
        return torch.stack(got)

    # ------------------------------------------------------------------ analyses
    def run(self, which: str) -> Any:
        """Run one analysis (``"topk"``, ``"sanity"``, ``"pointing"`` or ``"faithfulness"``) and show its result.

        ``"faithfulness"`` runs on the faithfulness panel's worker and returns at once;
        the others block and return their result (None after an error, which replaces the
        old result).
        """
        if which == "faithfulness":
            self.faithfulness.run()
            return None
        if not self._busy.acquire(blocking=False):
            self.w_out_html.value = message_html("an analysis is already running", "note")
            return None
        guard: AbstractContextManager[Any] = self._lock if self._lock is not None else nullcontext()
        try:
            # the explorer's image is read before taking the lock its renders need
            req = request_from_explorer(self.explorer) if which == "sanity" and self.explorer is not None else None
            with guard:
                self._run(which, req)
            self._progress(1.0, "done")
            return self.result
        except SaliencyError as err:
            self.result = None
            # the old grid (or plot) goes with the old result
            self._show(None, message_html(str(err), "error"), "sanity" if which == "sanity" else "main")
            self._progress(0.0, "error")
            return None
        finally:
            self._busy.release()

    #: A mined top-k index (:func:`attach_index`): top-9 of its layers is read from it, never rescanned.
    index: MiningIndex | None = None

    def _run(self, which: str, req: FaithRequest | None) -> None:
        indexed = indexed_top(self) if which == "topk" else None
        if indexed is not None:
            self.result = indexed
            self._show_topk()
        elif which == "topk":
            choice = self.data_choice()
            if choice.batches is None:
                raise InputError(choice.description)
            n = choice.size or 0
            t0 = time.perf_counter()

            def show(seen: int, _total: int) -> None:
                self._progress(seen / n if n else 0.5, f"{seen / max(time.perf_counter() - t0, 1e-9):.0f} img/s")

            with reporting(show):
                res: Any = top_activations(self.model, choice.batches(), self.w_layer.value, k=9, progress=False)
            self._topk_data = choice.description  # shown under the grid
            self.result = res
            self.w_filter.max = len(res.channels) - 1
            self._show_topk()
        elif which == "sanity":
            if req is not None:
                x, what = req.inputs, f"the explorer's image, class {req.label!r}"
            else:
                x, what = self._first_images(4), "the first 4 images of the chosen data"
            results = []
            for k, m in enumerate(("gradient", "guided_backprop")):
                self._progress(k / 2, m)
                results.append(sanity_check(self.model, x, method=m))
            self.result = results
            tables = "".join(f"<b>{html.escape(r.method)}</b>{markdown_table_html(r.table())}" for r in results)
            self._show(sanity_plot_png(results), f"<small>sanity check on {html.escape(what)}</small>{tables}", "sanity")
        elif which == "pointing":
            if not is_bundled(self.model):
                raise SaliencyError(
                    "the pointing game here uses the bundled shapes data and its object masks, which only the "
                    "bundled model classifies; for your model call saliency_widget.analysis.pointing_game(model, "
                    "your_loader_of_(images, labels, masks))"
                )
            self._progress(0.1, "pointing")
            from torch.utils.data import DataLoader

            res = pointing_game(
                self.model, DataLoader(self.dataset, batch_size=64, shuffle=False),
                methods=["gradient", "deconvnet", "guided_backprop", "gradcam"], tolerance=1,
            )
            self.result = res
            self._show(None, f"<small>bundled shape scenes ({len(self.dataset)} images)</small>{markdown_table_html(res.table())}")
        else:
            raise SaliencyError(f"unknown analysis {which!r}; expected 'topk', 'sanity', 'pointing' or 'faithfulness'")

    def _show_topk(self) -> None:
        res = self.result
        if isinstance(res, IndexedTop):
            show_indexed(self, res)
            return
        if not isinstance(res, TopActivations):
            return
        c = res.channels[min(self.w_filter.value, len(res.channels) - 1)]
        row = res.channels.index(c)
        self._show(
            topk_grid_png(res, c, self.mean, self.std),
            f"<b>{html.escape(res.layer)}</b> filter {c}: strongest {float(res.values[row, 0]):.3f}; "
            f"{res.images_seen} images scanned in {res.seconds:.1f} s; data: {html.escape(self._topk_data)}",
        )

    def close(self) -> None:
        """Stop the faithfulness worker and close the child widgets."""
        self.faithfulness.close()
        super().close()


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
    top = res.index.top(res.layer, c)
    panel._show(
        res.index.grid_png(res.layer, c),
        f"<b>{html.escape(res.layer)}</b> filter {c}: strongest {top[0].value:.3f}; "
        f"from the index {html.escape(str(res.index.root))} (top-{res.index.k}, no rescan)",
    )


def panel_for(explorer: Any) -> AnalysisPanel:
    """An analyses panel over ``explorer``'s model, preprocessing and data, following its image."""
    io = explorer.model_io
    return AnalysisPanel(explorer.model, mean=io.mean, std=io.std, data=explorer.data, transform=io.transform, explorer=explorer)


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
    idx.check_model(explorer.model)
    panel = panel_for(explorer)
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
