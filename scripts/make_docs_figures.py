"""Regenerate the figures and tables that README.md shows (run after retraining the model).

    python scripts/make_docs_figures.py      # writes docs/*.png and docs/analyses.md
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from saliency_widget.analysis import pointing_game, sanity_check
from saliency_widget.data import ShapesDataset, load_sample
from saliency_widget.models import shapes_cnn
from saliency_widget.viz.figures import sanity_gallery_png, sanity_plot_png
from saliency_widget.viz.report import render_report

DOCS = Path(__file__).resolve().parents[1] / "docs"


def main() -> None:
    DOCS.mkdir(exist_ok=True)
    torch.manual_seed(0)
    model = shapes_cnn()
    lines = []
    t0 = time.perf_counter()
    methods = ["gradient", "deconvnet", "guided_backprop", "gradcam", "guided_gradcam"]
    for tol in (1, 3):
        res = pointing_game(model, DataLoader(ShapesDataset(500, seed=777), batch_size=50), methods=methods, tolerance=tol, distance="chebyshev")
        lines += [f"Pointing game on 500 held-out single-object scenes (seed 777), tolerance {tol} px, target = true class:", "", res.table(), ""]
    t1 = time.perf_counter()
    ds = ShapesDataset(8, seed=123)
    x = torch.stack([ds[i][0] for i in range(8)])
    results = [sanity_check(model, x, method=m) for m in ("gradient", "guided_backprop", "gradcam")]
    (DOCS / "sanity_spearman.png").write_bytes(sanity_plot_png(results, "spearman_abs"))
    (DOCS / "sanity_ssim.png").write_bytes(sanity_plot_png(results, "ssim"))
    (DOCS / "sanity_gallery_guided.png").write_bytes(sanity_gallery_png(results[1]))
    (DOCS / "sanity_gallery_gradient.png").write_bytes(sanity_gallery_png(results[0]))
    t2 = time.perf_counter()
    for r in results:
        lines += [f"Sanity check (cascading), {r.method}, 8 images (seed 123):", "", r.table(), ""]
    rep = render_report([load_sample("shapes_cross_ring"), load_sample("shapes_star_square")], model,
                        ["gradient", "deconvnet", "guided_backprop", "gradcam"], names=["shapes_cross_ring", "shapes_star_square"])
    (DOCS / "maps.png").write_bytes(rep.png)
    lines.append(f"(pointing game {t1 - t0:.0f} s, sanity checks {t2 - t1:.0f} s on this machine)")
    (DOCS / "analyses.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
