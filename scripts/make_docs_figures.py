"""Regenerate the figures and tables that the docs show (run after retraining the model).

    python scripts/make_docs_figures.py      # writes docs/*.png and docs/analyses.md's tables
    python scripts/make_docs_figures.py --only-faithfulness   # only the deletion/insertion section
    python scripts/make_docs_figures.py --only-faithfulness --n 20   # fewer scenes (a quick timing run)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from saliency_widget.analysis import faithfulness_vs_randomised, pointing_game, sanity_check
from saliency_widget.data import ShapesDataset, load_sample
from saliency_widget.engine import available_methods
from saliency_widget.models import shapes_cnn
from saliency_widget.viz.figures import sanity_gallery_png, sanity_plot_png
from saliency_widget.viz.report import render_report

DOCS = Path(__file__).resolve().parents[1] / "docs"


FAITH_START, FAITH_END = "<!-- faithfulness -->", "<!-- /faithfulness -->"
TABLES_START, TABLES_END = "<!-- tables -->", "<!-- /tables -->"
# All nine methods on 200 scenes take ~13-14 min on one thread (SmoothGrad and IG maps ~0.4 s per scene for both
# models, occlusion ~0.2 s, scoring ~0.09 s per map and scene, measured on 20 scenes); 160 took 614 s (~10 min).
FAITH_N = 160


def faithfulness_section(model: torch.nn.Module, n: int = FAITH_N, steps: int = 10) -> list[str]:
    """Deletion / insertion AUCs of every registered method on ``n`` held-out scenes, trained vs top-layers-randomised maps.

    The randomised maps come from a copy of the model whose two top layers (classifier.fc2
    and classifier.fc1, the first two steps of the cascading sanity check) are re-initialised,
    and are scored on the *trained* model for its predicted class
    (:func:`saliency_widget.analysis.faithfulness_vs_randomised`): a map that still scores
    well does not depend on the weights it should explain.
    """
    t0 = time.perf_counter()
    ds = ShapesDataset(n, seed=4242)
    x = torch.stack([ds[i][0] for i in range(n)])
    methods = available_methods()  # every registered method, occlusion / SmoothGrad / IG included
    res = faithfulness_vs_randomised(model, x, methods, top=2, steps=steps)
    head = (f"Deletion (to zeros = the mean colour) and insertion (from the blurred image) AUCs on {n} held-out "
            f"scenes (seed 4242), {steps} steps, MoRF, target = predicted class; \"(top layers randomised)\" maps "
            "come from a copy whose classifier.fc2 and classifier.fc1 are re-initialised (the first two steps of the "
            "cascading sanity check) and are scored on the trained model:")
    return [FAITH_START, head, "", res.table(), "", f"(faithfulness {time.perf_counter() - t0:.0f} s on this machine)",
            FAITH_END, ""]


def splice(text: str, start: str, end: str, lines: list[str]) -> str:
    """Replace what lies between the markers ``start`` and ``end`` (both included, ``lines`` holds them) in ``text``.

    The hand-written prose around the generated tables stays; without the markers the lines are appended.
    """
    if start in text:
        before, rest = text.split(start, 1)
        return before + "\n".join(lines) + rest.split(end, 1)[1].lstrip("\n")
    return text + "\n" + "\n".join(lines)


def only_faithfulness(n: int = FAITH_N) -> None:
    """Recompute the faithfulness section on ``n`` scenes and splice it into docs/analyses.md."""
    torch.manual_seed(0)
    lines = faithfulness_section(shapes_cnn(), n)
    path = DOCS / "analyses.md"
    path.write_text(splice(path.read_text() if path.exists() else "", FAITH_START, FAITH_END, lines))
    print("\n".join(lines))


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
    path = DOCS / "analyses.md"
    text = splice(path.read_text() if path.exists() else "", TABLES_START, TABLES_END, [TABLES_START, *lines, TABLES_END, "", ""])
    faith = faithfulness_section(model)
    path.write_text(splice(text, FAITH_START, FAITH_END, faith))
    print("\n".join(lines + ["", *faith]))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only-faithfulness", action="store_true", help="recompute only the deletion/insertion section")
    ap.add_argument("--n", type=int, default=FAITH_N, help=f"held-out scenes for the faithfulness section (default {FAITH_N})")
    args = ap.parse_args()
    if args.only_faithfulness:
        only_faithfulness(args.n)
    else:
        main()
