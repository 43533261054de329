"""Deletion / insertion curves against Quantus ``PixelFlipping`` on the same work (issues 20 and 33).

``n`` bundled-model scenes (128², 3 channels) x 3 methods (gradient, deconvnet, guided backprop),
maps computed once and shared by both sides. What each side computes, exactly:

* **Quantus** ``PixelFlipping(features_in_step=H*W/chunks, perturb_baseline=0.0, abs=False,
  normalise=False)``, ``softmax=True``, ``batch_size=n``: it ranks the ``C*H*W`` values
  separately, so each curve has ``ceil(C*H*W / features_in_step) = 3*chunks`` steps (48), each
  one forward pass of all ``n`` images (contiguous NCHW): ``3 methods x 48 x n`` image forwards
  (2304 for n = 16), the deletion curve only, no reference curve, no unperturbed point;
* **ours, same work** ``deletion_insertion(steps=3*chunks, baseline="zeros",
  kinds=("deletion",), reference=False)``: the unperturbed images and the baseline once
  (``2n``), then ``3 methods x n x (steps - 1)`` perturbed copies (``2n + 3n*47`` = 2288 image
  forwards for n = 16), in batches of ``default_batch_size`` (10 at 128² on a CPU),
  channels-last on a CPU;
* **ours, full result**: also the insertion curves and the seeded random-order reference
  (2.7x the forward passes).

Warm: one small call of each side first (lazy setup, Quantus's first call is 2-4x slower), then
the cases interleaved ``repeats`` times; each row is the median, by wall clock and by the
process's CPU time (robust to other processes' load on a shared machine).
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

import saliency_widget as sw
from saliency_widget.analysis import deletion_insertion
from saliency_widget.data import ShapesDataset
from saliency_widget.models import shapes_cnn

from .run import Row, measure

METHODS = ("gradient", "deconvnet", "guided_backprop")

# Quantus's time over ours (the row's baseline is ours): ours >= 3x faster
TARGET = (">=", 3.0)


def faithfulness_rows(device: torch.device, repeats: int = 3, n_images: int = 8, chunks: int = 16) -> list[Row]:
    """Time ours vs Quantus on ``n_images`` held-out scenes; rows as in :mod:`benchmarks.run`."""
    model = shapes_cnn().to(device).eval()
    data = ShapesDataset(n_images, seed=2020)
    x = torch.stack([data[i][0] for i in range(n_images)]).to(device)
    with torch.no_grad():
        y = model(x).argmax(1)
    maps = {m: sw.saliency(model, x, y, method=m).detach() for m in METHODS}
    tag = "shapes"
    rows: list[Row] = []

    steps = 3 * chunks  # Quantus's forward passes per curve (see the module docstring)

    def ours_same() -> None:
        deletion_insertion(model, x, maps=maps, target=y, steps=steps, baseline="zeros", kinds=("deletion",),
                           reference=False)

    def ours_full() -> None:
        deletion_insertion(model, x, maps=maps, target=y, steps=steps, baseline="zeros")

    missing = ""
    try:
        import quantus  # noqa: PLC0415
    except Exception as err:  # pragma: no cover - quantus is a test/benchmark extra
        quantus = None
        missing = f"quantus unavailable: {err}"
    feats = x.shape[-1] * x.shape[-2] // chunks
    xn, yn = x.cpu().numpy(), y.cpu().numpy()
    an = {m: maps[m].cpu().numpy() for m in METHODS}

    def theirs() -> Any:
        metric = quantus.PixelFlipping(features_in_step=feats, perturb_baseline=0.0, abs=False, normalise=False,
                                       disable_warnings=True, display_progressbar=False)
        return [metric(model=model, x_batch=xn, y_batch=yn, a_batch=an[m], device=str(device), softmax=True,
                       batch_size=n_images) for m in METHODS]

    cases: dict[str, Callable[[], Any]] = {"same": ours_same, "full": ours_full}
    if quantus is not None:
        cases["quantus"] = theirs
    # one small call of each side first (lazy setup; Quantus's first call is 2-4x slower than
    # later ones), then the cases interleaved, so that load from other processes hits all alike
    deletion_insertion(model, x[:1], maps={m: v[:1] for m, v in maps.items()}, target=y[:1], steps=2)
    if quantus is not None:
        quantus.PixelFlipping(features_in_step=feats, perturb_baseline=0.0, abs=False, normalise=False,
                              disable_warnings=True, display_progressbar=False)(
            model=model, x_batch=xn[:1], y_batch=yn[:1], a_batch=an[METHODS[0]][:1], device=str(device), softmax=True,
            batch_size=1)
    samples: dict[str, list[float]] = {c: [] for c in cases}
    # the process's CPU time too: on a CPU shared with other processes the wall time mostly
    # measures their load, while CPU time counts only this work (all threads summed)
    cpu: dict[str, list[float]] = {c: [] for c in cases}
    for r in range(repeats):
        for c, fn in cases.items():
            c0 = time.process_time()
            samples[c] += measure(fn, device, 1, 0)
            cpu[c].append((time.process_time() - c0) * 1e3)
            print(f"faithfulness benchmark: repeat {r + 1}/{repeats}, {c}: {samples[c][-1]:.0f} ms wall, "
                  f"{cpu[c][-1]:.0f} ms CPU", flush=True)
    ours_ms = statistics.median(samples["same"])
    passes = 2 * n_images + len(METHODS) * n_images * (steps - 1)
    note = (f"{n_images} images x {len(METHODS)} methods, {steps} steps, deletion only, no reference: {passes} image "
            f"forwards (Quantus: {len(METHODS) * steps * n_images})")
    rows.append(Row(tag, n_images, "faithfulness curves, ours (same work as Quantus)", round(ours_ms, 3), "", None,
                    note=note, samples_ms=[round(v, 3) for v in samples["same"]]))
    full = statistics.median(samples["full"])
    rows.append(Row(tag, n_images, "faithfulness curves, ours (full result)", round(full, 3), "ours",
                    round(full / ours_ms, 3), note="deletion + insertion + random reference",
                    samples_ms=[round(v, 3) for v in samples["full"]]))
    if quantus is None:
        rows.append(Row(tag, n_images, "faithfulness curves, Quantus PixelFlipping", None, "ours", None, note=missing))
        return rows
    med = statistics.median(samples["quantus"])
    ratio = med / ours_ms
    rows.append(Row(tag, n_images, "faithfulness curves, Quantus PixelFlipping", round(med, 3), "ours",
                    round(ratio, 3), f"{TARGET[0]} {TARGET[1]}", ratio >= TARGET[1],
                    f"deletion only, features_in_step={feats} of {x[0].numel()} values",
                    [round(v, 3) for v in samples["quantus"]]))
    ours_cpu, theirs_cpu = statistics.median(cpu["same"]), statistics.median(cpu["quantus"])
    rows.append(Row(tag, n_images, "faithfulness curves, Quantus PixelFlipping, process CPU time", round(theirs_cpu, 3),
                    "ours (CPU time)", round(theirs_cpu / ours_cpu, 3), f"{TARGET[0]} {TARGET[1]}",
                    theirs_cpu / ours_cpu >= TARGET[1], f"ours {ours_cpu:.0f} ms CPU; robust to other processes' load",
                    [round(v, 3) for v in cpu["quantus"]]))
    return rows


# the widget's time to first curve (issue 20: <= 1 s on 2 CPU cores)
FIRST_CURVE_TARGET_MS = 1000.0


def first_curve_rows(repeats: int = 3) -> list[Row]:
    """Time from the faithfulness request to the first curve on the chart, bundled model, explorer's image.

    The explorer is the real one (``explore()``, bundled model and sample); the panel computes
    the current method's curves first and shows them, then the random reference. The number
    is the panel's own clock (:attr:`FaithfulnessPanel.first_curve_s`).
    """
    from saliency_widget.widget import explore  # noqa: PLC0415

    w = explore()
    try:
        w.w_analyses.selected_index = 0
        fp = w.analysis_panel.faithfulness
        firsts, totals = [], []
        for r in range(repeats + 1):  # the first run warms up
            t0 = time.perf_counter()
            fp.run()
            fp.wait(300)
            if r and fp.first_curve_s is not None:
                firsts.append(fp.first_curve_s * 1e3)
                totals.append((time.perf_counter() - t0) * 1e3)
    finally:
        w.close()
    med = statistics.median(firsts)
    print(f"faithfulness panel: time to first curve {med:.0f} ms (median of {len(firsts)}), "
          f"whole single-method request {statistics.median(totals):.0f} ms, {torch.get_num_threads()} threads", flush=True)
    return [Row("shapes", 1, "widget faithfulness: time to first curve", round(med, 3), "", None,
                f"<= {FIRST_CURVE_TARGET_MS:.0f} ms", med <= FIRST_CURVE_TARGET_MS,
                f"whole request (current method + random reference) {statistics.median(totals):.0f} ms",
                [round(v, 3) for v in firsts])]
