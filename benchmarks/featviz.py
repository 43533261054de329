"""Feature visualization: quality on the bundled model, and speed against Lucent and Horama.

Run ``python -m benchmarks.featviz --out benchmarks/results`` (``--quick`` for a smoke run).
Writes ``cpu-<date>-featviz.json`` and ``.md``: the rows of docs/featviz.md.

Cases
-----
filters
    All 64 filters of ``features.relu5`` in one :func:`saliency_widget.visualize` call; a
    filter counts when its visualization's channel-mean activation beats the best of 512
    held-out scenes (stream 20 000, never seen in training).
classes
    The 6 class models (``class_logit(k) - 0.05 * l2()``), per parametrisation and with or
    without transformation robustness: how many the bundled model classifies as their class
    with p >= 0.99.
speed
    16 channels x 64 steps x 128 px, Fourier with decorrelated colour and the standard
    transformations: ours in one batched call, against Lucent 0.1.8's ``render_vis`` once per
    channel (its default pipeline upsamples a 128 px image to 224 px; also with
    ``fixed_image_size=128``, the size we run at), and against Horama 0.3's ``maco`` (our
    ``param="maco"``), in the same process, one after the other.
interleaved
    The speed case as a fair measurement on a shared machine: ``--rounds`` rounds, each
    timing ours (16 channels, one call), Lucent (default and ``fixed_image_size=128``), ours
    with ``param="maco"`` and Horama's ``maco`` (its default 6 crops per step, and 2, the
    fewest it runs) back to back on ``--speed-steps`` steps. Each
    row is a median over rounds of the per image-step time, and the ratio is the median of
    the per-round ratios to ours measured in that same round, so a load change between rounds
    moves both sides.

Naturalness (the ``classes`` case): every class model is also scored by a second model of
the bundled architecture trained with another seed (``--second``, made by
``python -m saliency_widget.models.train_shapes --seed 1 --threads 1 --out PATH``; the
2026-12-04 results used ``--epochs 3 --n-train 6000`` for time: held-out accuracy 0.995): how many it
assigns to their class (argmax), and their mean probability of it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

import saliency_widget as sw
from saliency_widget import objectives as obj
from saliency_widget.data import MEAN, STD
from saliency_widget.data.shapes import CLASSES, make_batch, to_tensor
from saliency_widget.models import shapes_cnn

LAYER = "features.relu5"


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    if torch.cuda.is_available():  # a GPU's queued work counts too (benchmarks/gpu.sh)
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t0, out


def heldout_best(model: torch.nn.Module, n: int = 512, layer: str = LAYER) -> torch.Tensor:
    """``(C,)`` the best channel-mean activation of ``layer`` over ``n`` held-out scenes."""
    from saliency_widget.engine.capture import forward_to

    best = None
    for start in range(0, n, 128):
        x = to_tensor(make_batch(min(128, n - start), seed=20_000, start=start).images)
        with torch.no_grad():
            m = forward_to(model, x, layer).mean((2, 3)).amax(0)
        best = m if best is None else torch.maximum(best, m)
    assert best is not None
    return best


def case_filters(model: torch.nn.Module, steps: int, scenes: int) -> dict[str, Any]:
    """All 64 relu5 filters in one call against the best held-out scene per channel."""
    best = heldout_best(model, scenes)
    secs, vis = _timed(lambda: sw.visualize(model, [obj.channel(LAYER, c) for c in range(64)], steps=steps))
    beat = vis.values > best
    return {
        "case": f"64 filters of {LAYER}, one call, {steps} steps: beat the best of {scenes} held-out scenes",
        "value": f"{int(beat.sum())}/64 ({100.0 * float(beat.float().mean()):.0f} %)",
        "seconds": round(secs, 1),
        "median_ratio_to_best_scene": round(float((vis.values / best.clamp_min(1e-6)).median()), 2),
        "_vis": vis,
    }


CLASS_CONFIGS = "fourier:standard,fourier:none,pixel:standard,pixel:none,maco:standard,maco:none"


def second_model(path: Path | None) -> torch.nn.Module | None:
    """The bundled architecture with the weights at ``path`` (another training seed), or None."""
    if path is None or not path.is_file():
        return None
    from saliency_widget.models.shapes_cnn import ShapesCNN

    m = ShapesCNN(num_classes=len(CLASSES), batchnorm=False)
    m.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return m.eval()


def case_classes(
    model: torch.nn.Module, steps: int, quick: bool, spec: str = CLASS_CONFIGS, second: torch.nn.Module | None = None,
    size: int | None = None,
) -> list[dict[str, Any]]:
    """Class models per parametrisation, with and without transformation robustness (and the second seed's verdict)."""
    rows = []
    configs = [(p, None if t == "none" else t) for p, _, t in (c.partition(":") for c in spec.split(","))]
    if quick:
        configs = configs[:1]
    for param, tf in configs:
        objs = [obj.class_logit(k) - 0.05 * obj.l2() for k in range(len(CLASSES))]
        secs, vis = _timed(lambda p=param, t=tf, o=objs: sw.visualize(model, o, steps=steps, size=size, param=p, transforms=t))
        assert vis.probabilities is not None
        p_own = vis.probabilities[torch.arange(len(CLASSES)), torch.arange(len(CLASSES))]
        row = {
            "case": f"6 class models, param={param}, transforms={tf}, {steps} steps{f', {size} px' if size else ''}: classified with p >= 0.99",
            "value": f"{int((p_own >= 0.99).sum())}/6",
            "seconds": round(secs, 1),
            "min_p": round(float(p_own.min()), 4),
            "_vis": vis if (param, tf) == ("fourier", "standard") else None,
        }
        if second is not None:
            with torch.no_grad():  # the same model-ready inputs the first model scored
                p2 = torch.softmax(second(vis.inputs), dim=1)
            own2 = p2[torch.arange(len(CLASSES)), torch.arange(len(CLASSES))]
            hits = int((p2.argmax(1) == torch.arange(len(CLASSES))).sum())
            row["second_seed"] = f"{hits}/6 (mean p {float(own2.mean()):.3f})"
            row["value"] += f"; second seed assigns {row['second_seed']}"
        rows.append(row)
    return rows


@contextlib.contextmanager
def _chdir(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def case_speed(model: torch.nn.Module, channels: int, steps: int, size: int) -> list[dict[str, Any]]:
    """Ours (one batched call) vs Lucent's render_vis and Horama's maco (one call per channel)."""
    rows: list[dict[str, Any]] = []
    ours, _ = _timed(lambda: sw.visualize(model, [obj.channel(LAYER, c) for c in range(channels)], steps=steps, size=size))
    rows.append({"case": f"ours: {channels} channels x {steps} steps x {size} px, fourier + standard, one call", "seconds": round(ours, 2), "ratio": 1.0})
    device = next(model.parameters()).device  # cpu, or cuda under benchmarks/gpu.sh
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    try:
        from lucent.optvis import param as lparam
        from lucent.optvis import render as lrender
        from lucent.optvis import transform as ltransform
    except ImportError as err:
        rows.append({"case": "Lucent 0.1.8 render_vis", "seconds": None, "ratio": None, "note": f"lucent unavailable: {err}"})
    else:
        tfs = [*ltransform.standard_transforms, lambda x: (x - mean) / std]
        for fixed, label in ((None, "its default: upsampled to 224 px"), (size, f"fixed_image_size={size}")):

            def lucent_all(fixed: int | None = fixed) -> None:
                for c in range(channels):
                    lrender.render_vis(
                        model, f"features_relu5:{c}", lambda: lparam.image(size, fft=True, decorrelate=True), transforms=tfs,
                        thresholds=(steps,), preprocess=False, progress=False, show_image=False, fixed_image_size=fixed,
                    )  # fmt: skip

            torch.manual_seed(0)
            secs, _ = _timed(lucent_all)
            rows.append({"case": f"Lucent 0.1.8 render_vis x {channels} ({label})", "seconds": round(secs, 2), "ratio": round(secs / ours, 2)})
    ours_maco, _ = _timed(lambda: sw.visualize(model, [obj.channel(LAYER, c) for c in range(channels)], steps=steps, size=size, param="maco"))
    rows.append({"case": f"ours: param='maco', {channels} channels, one call", "seconds": round(ours_maco, 2), "ratio": 1.0})
    try:
        from horama import maco
    except ImportError as err:
        rows.append({"case": "Horama 0.3 maco", "seconds": None, "ratio": None, "note": f"horama unavailable: {err}"})
    else:
        # Horama downloads an ImageNet magnitude spectrum; offline, give it the 1/f spectrum ours uses.
        from saliency_widget.featviz.params import spectrum_scale

        with tempfile.TemporaryDirectory() as tmp, _chdir(Path(tmp)):
            np.save("spectrum_decorrelated.npy", spectrum_scale(size, size).float().expand(3, -1, -1).numpy())

            def horama_all() -> None:
                for c in range(channels):
                    def objective(images: torch.Tensor, c: int = c) -> torch.Tensor:
                        from saliency_widget.engine.capture import forward_to

                        return forward_to(model, (images - mean) / std, LAYER)[:, c].mean()

                    maco(objective, total_steps=steps, image_size=size, model_input_size=size, device=str(device))

            torch.manual_seed(0)
            secs, _ = _timed(horama_all)
        rows.append({"case": f"Horama 0.3 maco x {channels} (6 crops per step, its default)", "seconds": round(secs, 2), "ratio": round(secs / ours_maco, 2)})
    return rows


def _lucent_runner(model: torch.nn.Module, size: int, steps: int, fixed: int | None) -> Callable[[int], None]:
    from lucent.optvis import param as lparam
    from lucent.optvis import render as lrender
    from lucent.optvis import transform as ltransform

    device = next(model.parameters()).device
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    tfs = [*ltransform.standard_transforms, lambda x: (x - mean) / std]

    def run(c: int) -> None:
        lrender.render_vis(
            model, f"features_relu5:{c}", lambda: lparam.image(size, fft=True, decorrelate=True), transforms=tfs,
            thresholds=(steps,), preprocess=False, progress=False, show_image=False, fixed_image_size=fixed,
        )  # fmt: skip

    return run


def _horama_runner(model: torch.nn.Module, size: int, steps: int, crops: int) -> Callable[[int], None]:
    import horama.maco_fv
    from horama import maco

    horama.maco_fv.tqdm = lambda steps: steps  # no progress bar per call in the results log

    from saliency_widget.engine.capture import forward_to

    device = next(model.parameters()).device

    def run(c: int) -> None:
        # Horama's images are already model inputs (its values_range), so no normalisation here.
        def objective(images: torch.Tensor) -> torch.Tensor:
            return forward_to(model, images, LAYER)[:, c].mean()

        maco(objective, total_steps=steps, image_size=size, model_input_size=size, crops_per_iteration=crops, device=str(device))

    return run


def case_interleaved(model: torch.nn.Module, channels: int, steps: int, size: int, rounds: int) -> list[dict[str, Any]]:
    """Per image-step times, contenders back to back in every round; medians over rounds (see the module docstring)."""
    objs = [obj.channel(LAYER, c) for c in range(channels)]
    contenders: list[tuple[str, str, Callable[[], Any], int]] = [
        ("ours", f"ours: {channels} channels in one call, fourier + standard", lambda: sw.visualize(model, objs, steps=steps, size=size), channels),
    ]
    notes: list[dict[str, Any]] = []
    try:
        default, fixed = _lucent_runner(model, size, steps, None), _lucent_runner(model, size, steps, size)
    except ImportError as err:
        notes.append({"case": "Lucent 0.1.8 render_vis", "seconds": None, "ratio": None, "note": f"lucent unavailable: {err}"})
    else:
        contenders.append(("ours", "Lucent 0.1.8 render_vis, 1 channel (its default: upsampled to 224 px)", lambda: default(0), 1))
        contenders.append(("ours", f"Lucent 0.1.8 render_vis, 1 channel, fixed_image_size={size}", lambda: fixed(0), 1))
    contenders.append(("ours_maco", f"ours: param='maco', {channels} channels in one call", lambda: sw.visualize(model, objs, steps=steps, size=size, param="maco"), channels))
    with contextlib.ExitStack() as stack:
        try:
            h6, h2 = _horama_runner(model, size, steps, 6), _horama_runner(model, size, steps, 2)
        except ImportError as err:
            notes.append({"case": "Horama 0.3 maco", "seconds": None, "ratio": None, "note": f"horama unavailable: {err}"})
        else:
            # Horama downloads an ImageNet magnitude spectrum; offline, give it the 1/f spectrum ours uses.
            from saliency_widget.featviz.params import spectrum_scale

            tmp = stack.enter_context(tempfile.TemporaryDirectory())
            stack.enter_context(_chdir(Path(tmp)))
            np.save("spectrum_decorrelated.npy", spectrum_scale(size, size).float().expand(3, -1, -1).numpy())
            contenders.append(("ours_maco", "Horama 0.3 maco, 1 channel, 6 crops per step (its default)", lambda: h6(0), 1))
            # 1 crop per step (ours' work) fails inside Horama 0.3 (a squeeze drops the batch axis): 2 is its least
            contenders.append(("ours_maco", "Horama 0.3 maco, 1 channel, 2 crops per step (the fewest it runs)", lambda: h2(0), 1))
        per_step: dict[str, list[float]] = {label: [] for _, label, _, _ in contenders}
        loads = []
        wall: dict[str, float] = {}
        for _ in range(rounds):
            loads.append(os.getloadavg()[0])
            for _, label, fn, images in contenders:
                torch.manual_seed(0)
                secs, _ = _timed(fn)
                per_step[label].append(secs / (images * steps))
                wall[label] = wall.get(label, 0.0) + secs
    base = {"ours": contenders[0][1], "ours_maco": next(lbl for _, lbl, _, _ in contenders if lbl.startswith("ours: param='maco'"))}
    rows = []
    for ref, label, _, _ in contenders:
        times = per_step[label]
        ratios = [t / b for t, b in zip(times, per_step[base[ref]])]
        rows.append({
            "case": f"interleaved x {rounds}, {steps} steps x {size} px, per image-step: {label}",
            "value": f"median {1000 * statistics.median(times):.0f} ms (range {1000 * min(times):.0f}-{1000 * max(times):.0f})",
            "seconds": round(wall[label], 2),
            "ratio": None if label == base[ref] else round(statistics.median(ratios), 2),
            "ratios": [round(r, 2) for r in ratios],
            "load_1min": [round(v, 1) for v in loads],
        })  # fmt: skip
    return rows + notes


def _save_figure(vis_filters: Any, vis_classes: Any, path: Path) -> None:
    from PIL import Image

    def grid(images: torch.Tensor, cols: int) -> np.ndarray:
        n, _, h, w = images.shape
        rows_ = (n + cols - 1) // cols
        out = np.full((rows_ * (h + 2), cols * (w + 2), 3), 255, np.uint8)
        for i in range(n):
            r, c = divmod(i, cols)
            out[r * (h + 2) : r * (h + 2) + h, c * (w + 2) : c * (w + 2) + w] = (images[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        return out

    parts = [grid(vis_classes.images, 6)] if vis_classes is not None else []
    parts.append(grid(vis_filters.images[:32], 16))
    width = max(p.shape[1] for p in parts)
    canvas = np.concatenate([np.pad(p, ((0, 6), (0, width - p.shape[1]), (0, 0)), constant_values=255) for p in parts])
    Image.fromarray(canvas).save(path)


def main(argv: list[str] | None = None) -> int:
    """Run the cases; write the JSON and Markdown results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--steps", type=int, default=256, help="steps for the quality cases")
    ap.add_argument("--scenes", type=int, default=512)
    ap.add_argument("--quick", action="store_true", help="tiny settings: a smoke test of this script")
    ap.add_argument("--skip", default="", help="comma-separated cases to skip: interleaved, speed, filters, classes")
    ap.add_argument("--configs", default=CLASS_CONFIGS, help="class-model cases, param:transforms (default: %(default)s)")
    ap.add_argument("--figure", type=Path, default=None, help="also save class models + filters as a PNG here")
    ap.add_argument("--device", default="cpu", help="the model's device (benchmarks/gpu.sh: cuda, speed case only)")
    ap.add_argument("--tag", default="", help="suffix of the result file names")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of the interleaved case")
    ap.add_argument("--class-size", type=int, default=None, help="image side of the class models (default: the model's input size)")
    ap.add_argument("--speed-steps", type=int, default=16, help="steps per run in the interleaved case")
    ap.add_argument("--second", type=Path, default=Path.home() / ".cache" / "saliency_widget" / "shapes_cnn_seed1.pt",
                    help="weights of the bundled architecture trained with another seed (naturalness; skipped if missing)")
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    steps = 4 if args.quick else args.steps
    model = shapes_cnn().to(args.device)
    rows: list[dict[str, Any]] = []
    vis_f = vis_c = None
    if "interleaved" not in skip:
        rows += case_interleaved(model, 2 if args.quick else 16, 2 if args.quick else args.speed_steps, 64 if args.quick else 128,
                                 1 if args.quick else args.rounds)
    if "speed" not in skip:
        rows += case_speed(model, 2 if args.quick else 16, 2 if args.quick else 64, 64 if args.quick else 128)
    if "filters" not in skip:
        r = case_filters(model, steps, 16 if args.quick else args.scenes)
        vis_f = r.pop("_vis")
        rows.append(r)
    if "classes" not in skip:
        second = second_model(args.second)
        if second is None:
            rows.append({"case": "naturalness: second-seed model", "note": f"skipped: no weights at {args.second}"})
        for r in case_classes(model, steps, args.quick, args.configs, second, args.class_size):
            vis_c = r.pop("_vis") or vis_c
            rows.append(r)
    if args.figure is not None and vis_f is not None:
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        _save_figure(vis_f, vis_c, args.figure)
    args.out.mkdir(parents=True, exist_ok=True)
    tag = "-quick" if args.quick else "".join(f"-no{s}" for s in sorted(skip))
    stem = args.out / f"{torch.device(args.device).type}-{datetime.date.today().isoformat()}-featviz{tag}{'-' + args.tag if args.tag else ''}"
    meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(), "load": os.getloadavg()}
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = ["| case | value | seconds | ratio to ours |", "|---|---|---|---|"]
    for r in rows:
        ratio = r.get("ratio")
        lines.append(f"| {r['case']} | {r.get('value', r.get('note', ''))} | {r.get('seconds')} | {'' if ratio is None else f'{ratio:.2f}x'} |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
