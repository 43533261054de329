"""Views of the analyses: top-9 grids, sanity-check plots and galleries (PNG), and a widget panel.

PNGs are drawn with PIL only, so they work in notebooks, reports and the README alike.
"""

from __future__ import annotations

import html
import math
import threading
from collections.abc import Sequence
from typing import Any

import ipywidgets as W
import numpy as np
from PIL import Image, ImageDraw
from torch import nn

from ..analysis import SanityResult, TopActivations, pointing_game, sanity_check, top_activations
from ..errors import SaliencyError
from ..viz import render as R

__all__ = ["topk_grid_png", "sanity_plot_png", "sanity_gallery_png", "AnalysisPanel"]

_COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def _tile(images: Sequence[np.ndarray], cols: int, cell: int, gap: int = 2) -> np.ndarray:
    rows = math.ceil(len(images) / cols)
    out = np.full((rows * (cell + gap) + gap, cols * (cell + gap) + gap, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        pil = Image.fromarray(np.ascontiguousarray(im)).resize((cell, cell), Image.Resampling.NEAREST)
        out[gap + r * (cell + gap) : gap + r * (cell + gap) + cell, gap + c * (cell + gap) : gap + c * (cell + gap) + cell] = np.asarray(pil)
    return out


def topk_grid_png(
    res: TopActivations,
    channel: int,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    cell: int = 64,
) -> bytes:
    """Zeiler-Fergus figure 2 for one filter: the k projections (left) and image patches (right) as a PNG."""
    projs, patches = [], []
    for img_patch, proj_patch in res.patches(channel):
        rm = R.render_map(proj_patch.cpu().numpy(), sign="signed", clip_percentile=99.5, cmap="coolwarm")
        projs.append(rm.rgb if rm.rgb is not None else R.message_panel("zero", (cell, cell)))
        patches.append(R.input_to_rgb(img_patch.cpu().numpy(), mean, std))
    cols = max(1, math.ceil(math.sqrt(len(projs))))
    left, right = _tile(projs, cols, cell), _tile(patches, cols, cell)
    titles = [f"{res.layer} #{channel}: projections ({res.method})", "image patches"]
    return R.to_png(R.compose([left, right], titles, height=left.shape[0]))


def sanity_plot_png(results: Sequence[SanityResult], metric: str = "spearman_abs", size: tuple[int, int] = (560, 300)) -> bytes:
    """Similarity to the original map vs. randomisation step, one line per method (PIL line chart)."""
    if not results:
        raise SaliencyError("sanity_plot_png needs at least one SanityResult")
    w, h = size
    left, right, top, bottom = 46, 130, 20, 90
    img = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(img)
    steps = results[0].steps
    n = len(steps)
    pw, ph = w - left - right, h - top - bottom
    lo, hi = -0.2, 1.0

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (pw * i / max(1, n - 1))
        y = top + ph * (hi - max(lo, min(hi, v))) / (hi - lo)
        return x, y

    for v in (0.0, 0.5, 1.0):
        y = xy(0, v)[1]
        d.line([(left, y), (left + pw, y)], fill=(225, 225, 225))
        d.text((4, y - 6), f"{v:.1f}", fill=(80, 80, 80))
    d.rectangle([left, top, left + pw, top + ph], outline=(150, 150, 150))
    for i, s in enumerate(steps):
        x = xy(i, 0)[0]
        label = s.split(".")[-1]
        d.text((x - 3, top + ph + 4 + 12 * (i % 2)), label[:10], fill=(60, 60, 60))
    d.text((left, h - 30), f"randomised from the top down to (cascading) -> {metric}", fill=(60, 60, 60))
    for k, r in enumerate(results):
        vals = [float(v) for v in getattr(r, metric)]
        pts = [xy(i, v) for i, v in enumerate(vals) if math.isfinite(v)]
        col = _COLORS[k % len(_COLORS)]
        if len(pts) > 1:
            d.line(pts, fill=col, width=2)
        for p in pts:
            d.ellipse([p[0] - 3, p[1] - 3, p[0] + 3, p[1] + 3], fill=col)
        d.text((left + pw + 10, top + 14 * k), r.method, fill=col)
    return R.to_png(np.asarray(img))


def sanity_gallery_png(res: SanityResult, image: int = 0, height: int = 96) -> bytes:
    """The map of one image after each randomisation step, side by side."""
    panels, titles = [], []
    for s, m in zip(res.steps, res.maps[:, image]):
        rm = R.render_map(m.cpu().numpy(), sign="absolute", clip_percentile=99.0)
        panels.append(rm.rgb if rm.rgb is not None else R.message_panel(rm.message or "", (height, height)))
        titles.append(s.split(".")[-1])
    return R.to_png(R.compose(panels, titles, height=height))


class AnalysisPanel(W.VBox):
    """Buttons for the three analyses on a model, each with a progress bar and its result.

    Parameters
    ----------
    model
        The classifier (default: the bundled shapes model).
    dataset_size
        Images of the bundled shapes data used by top-9 and the pointing game.
    """

    def __init__(self, model: nn.Module | None = None, dataset_size: int = 256, mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> None:
        from ..data import ShapesDataset
        from ..models import shapes_cnn

        self.model = model if model is not None else shapes_cnn()
        weights = getattr(self.model, "saliency_weights", None)
        self.mean = mean if mean is not None else (weights.meta["mean"] if weights is not None else None)
        self.std = std if std is not None else (weights.meta["std"] if weights is not None else None)
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

    def _progress(self, done: float, label: str) -> None:
        self.w_progress.value = max(0.0, min(1.0, done))
        self.w_progress.description = label

    def run(self, which: str) -> Any:
        """Run one analysis (``"topk"``, ``"sanity"`` or ``"pointing"``) and show its result."""
        if not self._lock.acquire(blocking=False):
            self.w_out_html.value = "<i>an analysis is already running</i>"
            return None
        try:
            if which == "topk":
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
            self.w_out_html.value = f"<span style='color:#b00'>{html.escape(str(err))}</span>"
            self._progress(0.0, "error")
            return None
        finally:
            self._lock.release()

    def _batches(self) -> Any:
        from torch.utils.data import DataLoader

        return DataLoader(self.dataset, batch_size=64, shuffle=False)

    def _show_topk(self) -> None:
        res = self.result
        if not isinstance(res, TopActivations):
            return
        c = res.channels[min(self.w_filter.value, len(res.channels) - 1)]
        self.w_out_img.value = topk_grid_png(res, c, self.mean, self.std)
        row = res.channels.index(c)
        self.w_out_html.value = (
            f"<b>{html.escape(res.layer)}</b> filter {c}: strongest {float(res.values[row, 0]):.3f}; "
            f"{res.images_seen} images scanned in {res.seconds:.1f} s"
        )

