"""The analyses panel: top-9 per filter, faithfulness with the sanity check beside it, pointing game.

Results show as HTML tables (:mod:`saliency_widget.viz.tables`), never as markdown pipes; a
panel without a picture shows a message instead of an empty image; every new result or error
replaces the old picture. Top-9 scans the data chosen in the panel
(:func:`~.datasource.choose_data`), named in the panel. The figures themselves (PNG) live in
:mod:`saliency_widget.viz.figures`; they are re-exported here for notebooks written against
this module.
"""

from __future__ import annotations

import functools
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
from ..analysis.pointing import pointing_methods
from ..analysis.topk import project_top
from ..engine import Explainer, available_methods, method_label
from ..engine.layouts import SPATIAL_LAYOUTS
from ..engine.progress import reporting
from ..errors import Cancelled, InputError, SaliencyError
from ..views.classes import class_name, projection_rule
from ..views.layermenu import default_layer, layer_choices, noop_layers
from ..viz.figures import sanity_gallery_png, sanity_plot_png, topk_grid_png
from ..viz.images import describe_model
from ..viz.report import message_html
from ..viz.tables import markdown_table_html
from .analysisjob import AnalysisJob
from .datasource import FOLDER, DataChoice, choose_data, data_options, is_bundled
from .faithpanel import FaithfulnessPanel, FaithRequest, request_from_explorer

__all__ = ["AnalysisPanel", "IndexedTop", "attach_index", "sanity_gallery_png", "sanity_plot_png", "topk_grid_png"]

_HIDDEN, _SHOWN = "none", ""


class AnalysisPanel(W.VBox):
    """Buttons for the analyses on a model, each with a progress bar and its result.

    The layer menu lists the engine's inspectable layers (:meth:`Explainer.layers
    <saliency_widget.engine.Explainer.layers>`, as the explorer's), not only ``nn.ReLU``
    modules, so a GELU model (a ViT) has one too. With an explorer, the layer, the filter and
    the sanity check's method follow the explorer's until the user changes one of them in the
    panel ("follow the explorer" turns off; ticking it again follows again).

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
        faithfulness analysis and the sanity check use, and whose layer and filter the panel
        follows (None: the first image of the data).
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
        self._syncing = False  # True while the panel follows the explorer (not a user's change)
        opts = data_options(self.model, data)
        default = opts[0][1] if data is not None or is_bundled(self.model) else None
        self.w_data = W.Dropdown(options=[("(choose data)", None), *opts] if default is None else opts, value=default, description="data")
        self.w_folder = W.Text(placeholder="path/to/a/folder/of/images", description="folder", continuous_update=False)
        self.w_folder.layout.display = _HIDDEN
        self.w_data_note = W.HTML()
        self.w_data.observe(lambda _c: self._on_data(), names="value")
        self.w_folder.observe(lambda _c: self._on_data(), names="value")
        self._on_data()
        probe = self._probe()
        self._infos = {i.key: i for i in (probe.layers if probe is not None else []) if i.layout in SPATIAL_LAYOUTS}
        infos = list(self._infos.values())
        first = explorer.layer if explorer is not None and explorer.layer in self._infos else (
            default_layer(infos, self.model) if infos else None
        )
        # as the explorer's menu: pass-through layers (Identity, Dropout in eval) hidden, unless shown there
        self._noop = noop_layers(infos, self.model)
        layer_opts: list[Any] = layer_choices(infos, hide=self._noop - {first}) if infos else self._relu_modules()
        first = first if first is not None else (layer_opts[len(layer_opts) // 2] if layer_opts else None)
        self.w_layer = W.Dropdown(options=layer_opts, value=first, description="layer", layout=W.Layout(width="420px"))
        self.w_filter = W.IntSlider(0, min=0, max=0, description="filter")
        self._fit_filter()
        self.w_follow = W.Checkbox(
            value=explorer is not None, disabled=explorer is None, description="follow the explorer", indent=False,
            tooltip="layer, filter and the sanity check's method as in the explorer, until you change one here",
        )
        runnable = [(method_label(m), m) for m in self._methods() if probe is None or probe.unavailable(m) is None]
        self.w_sanity_method = W.Dropdown(options=runnable, description="method", tooltip="the method whose maps the sanity check randomises")
        self.w_topk = W.Button(description="top-9 per filter", icon="th")
        self.w_sanity = W.Button(description="sanity check", icon="random", tooltip="cascading randomisation of the weights (Adebayo et al.)")
        self.w_pointing = W.Button(description="pointing game", icon="crosshairs")
        # top-9, the pointing game and the sanity check: the buttons run them on a worker thread, which
        # the cancel button stops before its next batch
        self.job = AnalysisJob(self.run)
        self.w_progress, self.w_progress_text, self.w_stop = self.job.w_progress, self.job.w_text, self.job.w_stop
        self.w_out_img = W.Image(format="png")
        self.w_out_img.layout.display = _HIDDEN
        self.w_out_html = W.HTML()
        self.w_pointing_html = W.HTML()  # its own place: the pointing game never replaces the top-9 grid
        self.w_sanity_img = W.Image(format="png", layout=W.Layout(max_width="100%"))
        self.w_sanity_img.layout.display = _HIDDEN
        self.w_sanity_html = W.HTML()
        self.faithfulness = FaithfulnessPanel(
            self.model, self._faith_request, lock=self._lock, own_controls=False,
            yield_to=(lambda: explorer.wait(timeout=30)) if explorer is not None else None,
        )
        self.result: Any = None
        self._topk_data = ""
        fp = self.faithfulness
        super().__init__([
            W.HBox([self.w_layer, self.w_filter, self.w_follow], layout=_WRAP),
            W.HBox([self.w_data, self.w_folder], layout=_WRAP), self.w_data_note,
            W.HBox([self.w_topk, self.w_pointing, self.w_stop, self.w_progress, self.w_progress_text], layout=_WRAP),
            # top-9 patches and their projections, with "what excites it" beside them (widget/featpanel.py)
            W.HBox([W.VBox([self.w_out_html, self.w_out_img]), *self._beside_topk()], layout=_TOP),
            self.w_pointing_html,
            W.HTML("<div style='margin-top:8px'><b>this image</b>: faithfulness of its maps (deletion / insertion, RISE) "
                   "and the sanity check</div>"),
            # every button in one row above the results, so none moves when a chart appears
            W.HBox([fp.w_run, fp.w_cancel, self.w_sanity_method, self.w_sanity], layout=_WRAP),
            fp, self.w_sanity_html, self.w_sanity_img,
        ])
        self.add_class("sw-analyses")
        for w, name in [
            (self.w_layer, "layer"), (self.w_filter, "filter"), (self.w_follow, "follow"), (self.w_sanity_method, "sanity-method"),
            (self.w_sanity, "sanity"), (self.w_sanity_html, "sanity-out"), (self.w_sanity_img, "sanity-img"), (self.w_topk, "topk"),
            (self.w_pointing, "pointing"), (self.w_stop, "cancel"), (self.w_progress, "progress"), (self.w_progress_text, "progress-text"),
            (self.w_pointing_html, "pointing-out"), (fp.w_run, "faith"), (fp.w_table, "faith-table"), (fp.w_status, "faith-status"),
            (fp.w_hint, "faith-hint"), (fp.w_chart, "faith-chart"),
        ]:
            w.add_class(f"sw-an-{name}")  # stable handles for browser tests and page styles
        self.w_topk.on_click(lambda _b: self.job.start("topk"))
        self.w_sanity.on_click(lambda _b: self.job.start("sanity"))
        self.w_pointing.on_click(lambda _b: self.job.start("pointing"))
        self.w_filter.observe(lambda _c: self._show_topk(), names="value")
        self.w_layer.observe(lambda _c: self._fit_filter(), names="value")
        for w in (self.w_layer, self.w_filter, self.w_sanity_method):
            w.observe(self._user_changed, names="value")
        self.w_follow.observe(lambda c: self.follow() if c["new"] else None, names="value")
        if explorer is not None:
            explorer.observe(self.follow, names=["layer", "channel", "method"])
            self._observing = True
            self.follow()

    # ------------------------------------------------------------------ layers, methods, following
    def _probe(self) -> Any:
        """An explainer of one image (the explorer's, else the data's first): its layers and which methods run."""
        try:
            if self.explorer is not None:
                return self.explorer.inputs.explainer()
            return Explainer(self.model, self._first_images(1))
        except SaliencyError:
            return None  # no image yet: the ReLU modules, every method

    def _relu_modules(self) -> list[str]:
        return [n for n, m in self.model.named_modules() if isinstance(m, nn.ReLU)]

    def _methods(self) -> list[str]:
        return list(getattr(self.explorer, "methods", None) or available_methods())

    def _fit_filter(self) -> None:
        info = self._infos.get(self.w_layer.value)
        if info is not None:
            self.w_filter.max = max(0, int(info.shape[0]) - 1)

    def _user_changed(self, _change: Any) -> None:
        if not self._syncing and self.explorer is not None:
            self.w_follow.value = False  # the user chose here: the panel stops following

    def follow(self, _change: Any = None) -> None:
        """Take the explorer's layer, filter and method (when "follow the explorer" is ticked)."""
        ex = self.explorer
        if ex is None or not self.w_follow.value:
            return
        self._syncing = True
        try:
            if ex.layer in self._infos and ex.layer not in [o[1] if isinstance(o, tuple) else o for o in self.w_layer.options]:
                # a pass-through layer the explorer shows ("all layers"): list it here too
                self.w_layer.options = layer_choices(list(self._infos.values()), hide=self._noop - {ex.layer})
            if ex.layer in [o[1] if isinstance(o, tuple) else o for o in self.w_layer.options]:
                self.w_layer.value = ex.layer
            self._fit_filter()
            self.w_filter.value = min(int(ex.channel), self.w_filter.max)
            if ex.method in [v for _, v in self.w_sanity_method.options]:
                self.w_sanity_method.value = ex.method
        finally:
            self._syncing = False
        if indexed_top(self) is not None and self.w_layer.value == ex.layer:
            self.run("topk")  # read from the index: no scan

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

        ``where``: ``"main"`` (top-9), ``"pointing"`` (its table) or ``"sanity"`` (below the faithfulness curves).
        """
        if where == "pointing":
            self.w_pointing_html.value = body_html
            return
        img, out = (self.w_sanity_img, self.w_sanity_html) if where == "sanity" else (self.w_out_img, self.w_out_html)
        if png:
            img.value = png
            img.layout.display = _SHOWN
        else:
            img.value = b""
            img.layout.display = _HIDDEN
        out.value = body_html

    @property
    def progress_updates(self) -> int:
        """Progress updates shown by the last top-9, pointing game or sanity check."""
        return self.job.updates

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
        old result, or after a cancel, which keeps it). The buttons run them through
        :attr:`job` (:meth:`AnalysisJob.start <.analysisjob.AnalysisJob.start>`) on a worker thread.
        """
        if which == "faithfulness":
            self.faithfulness.run()
            return None
        if not self.job.begin():
            self.job.note_running()
            return None
        guard: AbstractContextManager[Any] = self._lock if self._lock is not None else nullcontext()
        try:
            # the explorer's image is read before taking the lock its renders need
            req = request_from_explorer(self.explorer) if which == "sanity" and self.explorer is not None else None
            with guard:
                self._run(which, req)
            self.job.show(1.0, "done", self.w_progress_text.value and _done_text(which))
            return self.result
        except Cancelled:  # the cancel button: the earlier result stays shown
            self.job.show(self.w_progress.value, "cancelled", f"{_NAMES.get(which, which)} cancelled")
            return None
        except SaliencyError as err:
            self.result = None
            # the old grid (or plot) goes with the old result
            self._show(None, message_html(str(err), "error"), {"sanity": "sanity", "pointing": "pointing"}.get(which, "main"))
            self.job.show(0.0, "error")
            return None
        finally:
            self.job.end()

    #: A mined top-k index (:func:`attach_index`): top-9 of its layers is read from it, never rescanned.
    index: MiningIndex | None = None

    def _run(self, which: str, req: FaithRequest | None) -> None:
        indexed = indexed_top(self) if which == "topk" else None
        if indexed is not None:
            self.result = indexed
            self._show_topk()
        elif which == "topk":
            self._run_topk()
        elif which == "sanity":
            method = self.w_sanity_method.value or "gradient"
            if req is not None:
                x, target, what = req.inputs, req.target, f"the explorer's image, class {req.label!r}"
            else:
                x, target, what = self._first_images(4), None, "the first 4 images of the chosen data"
            self.job.show(0.0, "sanity", f"sanity check of {method_label(method)}: randomising the weights")
            say = functools.partial(_count_text, f"sanity check of {method_label(method)}: randomised", "layers")
            with reporting(self.job.watch("sanity", 0.0, 1.0, say)):
                res = sanity_check(self.model, x, method=method, target=target)
            self.result = [res]
            # the plot right under the caption (wide enough for one label per step), its numbers on demand
            width = min(1000, max(560, 44 * len(res.steps)))
            self._show(
                sanity_plot_png([res], size=(width, 300)),
                f"<div><small>sanity check on {html.escape(what)}: the map should change as the weights are randomised "
                f"from the top</small></div><div style='margin-top:4px'><b>{html.escape(method_label(res.method))}</b></div>"
                f"<details><summary><small>the numbers ({len(res.steps) - 1} layers randomised)</small></summary>"
                f"{markdown_table_html(res.table())}</details>",
                "sanity",
            )
        elif which == "pointing":
            self._run_pointing()
        else:
            raise SaliencyError(f"unknown analysis {which!r}; expected 'topk', 'sanity', 'pointing' or 'faithfulness'")

    def _run_topk(self) -> None:
        choice = self.data_choice()
        if choice.batches is None:
            raise InputError(choice.description)
        t0 = time.perf_counter()

        def scanned(seen: int, total: int) -> str:
            rate = seen / max(time.perf_counter() - t0, 1e-9)
            then = "; receptive fields and projections next" if total and seen >= total else ""
            return f"scanning: {seen}{f' of {total}' if total else ''} images, {rate:.0f} img/s{then}"

        self.job.show(0.0, "top-9", "scanning …")
        # the scan, then the projections of the winners: each phase with its own progress
        with reporting(self.job.watch("scan", 0.0, 0.3, scanned)):
            res: Any = top_activations(self.model, choice.batches(), self.w_layer.value, k=9, progress=False, project=False)
        rule = self._projection_rule()
        say = functools.partial(_count_text, f"projecting the winners ({rule})", "")
        with reporting(self.job.watch("project", 0.3, 1.0, say)):
            res = project_top(self.model, res, method=rule)
        self._topk_data = choice.description  # shown under the grid
        self.result = res
        self.w_filter.max = len(res.channels) - 1
        self._show_topk()

    def _projection_rule(self) -> str:
        """DeconvNet (the paper's rule), or the gradient on a model that runs no ReLU (the explorer's choice too)."""
        probe = self._probe()
        return projection_rule("deconvnet", probe is None or probe.unavailable("deconvnet") is None)

    def _run_pointing(self) -> None:
        if not is_bundled(self.model):
            raise SaliencyError(
                "the pointing game here uses the bundled shapes data and its object masks, which only the "
                "bundled model classifies; for your model call saliency_widget.analysis.pointing_game(model, "
                "your_loader_of_(images, labels, masks))"
            )
        from torch.utils.data import DataLoader

        names, left_out = pointing_methods(self._methods(), self._probe())
        t0 = time.perf_counter()
        say = functools.partial(_count_text, f"pointing game, {len(names)} methods:", "maps")
        self.job.show(0.0, "pointing", f"pointing game, {len(names)} methods: starting")
        with reporting(self.job.watch("pointing", 0.0, 1.0, say)):
            # batches of 32: a progress update every few seconds even on a busy CPU
            res = pointing_game(self.model, DataLoader(self.dataset, batch_size=32, shuffle=False), methods=names, tolerance=1)
        self.result = res
        skipped = f"; left out (many passes per image): {', '.join(left_out)}" if left_out else ""
        self._show(
            None,
            f"<div><small>pointing game on the bundled shape scenes ({len(self.dataset)} images, tolerance 1 px), "
            f"{time.perf_counter() - t0:.1f} s{html.escape(skipped)}</small></div>{markdown_table_html(res.table())}",
            "pointing",
        )

    def _beside_topk(self) -> list[W.Widget]:
        """The explorer's feature visualization, shown beside the top-9 grid (none without an explorer)."""
        fp = getattr(self.explorer, "featpanel", None)
        return [fp.w_beside_topk] if fp is not None else []

    def _topk_shown(self, layer: str, c: int) -> None:
        fp = getattr(self.explorer, "featpanel", None)
        if fp is not None:
            fp.follow_topk(layer, c)

    def _show_topk(self) -> None:
        res = self.result
        if isinstance(res, IndexedTop):
            show_indexed(self, res)
            return
        if not isinstance(res, TopActivations):
            return
        c = res.channels[min(self.w_filter.value, len(res.channels) - 1)]
        row = res.channels.index(c)
        self._topk_shown(res.layer, c)
        self._show(
            topk_grid_png(res, c, self.mean, self.std),
            f"<b>{html.escape(res.layer)}</b> filter {c}: strongest {float(res.values[row, 0]):.3f}; "
            f"{res.images_seen} images scanned in {res.seconds:.1f} s; data: {html.escape(self._topk_data)}",
        )

    def close(self) -> None:
        """Stop following the explorer, stop the faithfulness worker and close the child widgets."""
        if self.__dict__.pop("_observing", False):
            self.explorer.unobserve(self.follow, names=["layer", "channel", "method"])
        self.job.cancel()
        self.faithfulness.close()
        super().close()


_WRAP = W.Layout(flex_flow="row wrap", align_items="center")
_TOP = W.Layout(flex_flow="row wrap", align_items="flex-start")


def _count_text(what: str, unit: str, done: int, total: int) -> str:
    return f"{what} {done}{f' of {total}' if total else ''}{f' {unit}' if unit else ''}"


_NAMES = {"topk": "top-9", "pointing": "pointing game", "sanity": "sanity check"}


def _done_text(which: str) -> str:
    return f"{_NAMES[which]} done" if which in _NAMES else "done"


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
    panel._topk_shown(res.layer, c)
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
    have = {v if isinstance(o, tuple) else o for o in panel.w_layer.options for v in ([o[1]] if isinstance(o, tuple) else [o])}
    panel._syncing = True
    try:  # the index's layers the menu lacks, first
        panel.w_layer.options = [*[(f"{k}  (mined index)", k) for k in idx.layers if k not in have], *panel.w_layer.options]
    finally:
        panel._syncing = False
    explorer.analysis_panel = panel
    explorer.ui.w_analyses.children = [panel]
    panel.follow()  # the explorer's layer and filter, read from the index when it holds them
    return panel
