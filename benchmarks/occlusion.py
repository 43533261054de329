"""Occlusion benchmark: incremental occlusion against the full recompute and Captum, in one run.

Window 16, stride 8, batch 1, logit of the predicted class (729 patches at 224²). Every ratio
is a row's median time over the incremental path's, measured in the same run::

    python -m benchmarks.occlusion                                  # vgg16, resnet50, bundled model; widget ResNet-18
    python -m benchmarks.occlusion --models shapes --repeats 3 --no-widget
    python -m benchmarks --occlusion-models vgg16 ...               # the same rows inside the full suite

It prints a markdown table and writes ``benchmarks/results/<device>-<date>-occlusion-incremental.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

import saliency_widget as sw

from .run import RESULTS, Row, _captum, _met, build_model, measure, to_markdown, write_results

# (op, bound) per case; the issue sets them for vgg16 on the CPU, other models are reported only
OCCLUSION_TARGETS: dict[str, tuple[str, float]] = {
    "occlusion, ours full recompute (incremental=False)": (">=", 3.0),
    "occlusion, Captum default (1 per eval)": (">=", 5.0),
}
TARGET_MODELS = ("vgg16",)


def occlusion_rows(name: str, model: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, repeats: int,
                   captum: bool = True, stride: int = 8) -> list[Row]:
    """Rows of one model: ours incremental (the baseline), ours full recompute, Captum (1 and 64 per eval).

    Each row's note also gives the median process CPU time (all threads): on a shared machine
    the wall clock also counts the time other processes hold the cores.
    """
    rows: list[Row] = []
    device = x.device
    base_cpu: list[float] = []  # the baseline's median CPU time, for the CPU-time ratio in the notes

    def timed(case: str, fn: Callable[[], Any], base_ms: float | None, note: str = "") -> float | None:
        cpu: list[float] = []

        def clocked() -> None:
            t0 = time.process_time()
            fn()
            cpu.append(time.process_time() - t0)

        try:
            samples = measure(clocked, device, repeats, 0)  # each call takes seconds: no warm-up run
        except Exception as err:  # a failing competitor is a result, not a crash
            rows.append(Row(name, x.shape[0], case, None, "", None, note=f"error: {type(err).__name__}: {str(err)[:80]}"))
            return None
        med = statistics.median(samples)
        c = statistics.median(cpu)
        base_cpu.extend([] if base_ms else [c])
        cpu_ratio = f", {c / base_cpu[0]:.2f}× by CPU time" if base_ms and base_cpu and base_cpu[0] > 0 else ""
        note = ", ".join(filter(None, [note, f"CPU time {c:.1f} s{cpu_ratio}"]))
        ratio = med / base_ms if base_ms else None
        tgt = OCCLUSION_TARGETS.get(case) if name in TARGET_MODELS else None
        met = _met(ratio, *tgt) if tgt and ratio is not None else None
        rows.append(Row(name, x.shape[0], case, round(med, 3), "incremental" if base_ms else "", None if ratio is None else round(ratio, 3),
                        f"{tgt[0]} {tgt[1]}" if tgt else "", met, note, [round(v, 3) for v in samples]))
        return med

    opts: dict[str, Any] = {"method": "occlusion", "window": 16, "stride": stride, "output": "logit"}
    ours = timed(f"occlusion 16x16 stride {stride}, ours", lambda: sw.saliency(model, x, t, **opts), None, "incremental, the default")
    timed("occlusion, ours full recompute (incremental=False)", lambda: sw.saliency(model, x, t, incremental=False, **opts), ours)
    ca = _captum() if captum else None
    if ca is not None:
        occ = ca.Occlusion(model)
        kw: dict[str, Any] = {"sliding_window_shapes": (x.shape[1], 16, 16), "strides": (x.shape[1], stride, stride), "target": t}
        timed("occlusion, Captum default (1 per eval)", lambda: occ.attribute(x, **kw), ours)
        timed("occlusion, Captum perturbations_per_eval=64", lambda: occ.attribute(x, perturbations_per_eval=64, **kw), ours)
    return rows


def widget_resnet18_rows(repeats: int, device: torch.device) -> list[Row]:
    """The widget's occlusion call on ResNet-18 at 224²: ``Explainer.saliency(target, "occlusion")``, before and after."""
    import torchvision  # noqa: PLC0415

    model = torchvision.models.resnet18(weights=None).eval().to(device)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(device)
    ex = sw.Explainer(model, x)  # what the widget's InputState builds per image
    rows: list[Row] = []
    after = statistics.median(s := measure(lambda: ex.saliency(None, "occlusion"), device, repeats, 0))
    rows.append(Row("resnet18 (widget)", 1, "widget occlusion map, incremental (after)", round(after, 3), "", None,
                    samples_ms=[round(v, 3) for v in s]))
    before = statistics.median(s := measure(lambda: ex.saliency(None, "occlusion", incremental=False), device, repeats, 0))
    rows.append(Row("resnet18 (widget)", 1, "widget occlusion map, full recompute (before)", round(before, 3), "incremental",
                    round(before / after, 3), samples_ms=[round(v, 3) for v in s]))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.occlusion", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="vgg16,resnet50,shapes", help="comma list of vgg16, resnet50, shapes, tiny")
    p.add_argument("--repeats", type=int, default=1, help="timed runs per case (median reported)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--stride", type=int, default=8, help="patch stride (window 16); time per patch hardly depends on it")
    p.add_argument("--size", type=int, default=None, help="input size (default: 224, bundled model native)")
    p.add_argument("--no-captum", action="store_true", help="skip Captum's rows")
    p.add_argument("--no-widget", action="store_true", help="skip the widget's ResNet-18 occlusion")
    p.add_argument("--tag", default="", help="suffix of the result file names")
    p.add_argument("--out", default=str(RESULTS), help="folder for the JSON and markdown results")
    a = p.parse_args(argv)
    device = torch.device(a.device)
    rows: list[Row] = []
    for name in [n for n in a.models.split(",") if n]:
        model, native, _ = build_model(name)
        size = a.size or native
        model = model.to(device)
        x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
        with torch.no_grad():
            t = model(x).argmax(1)
        rows += occlusion_rows(name, model, x, t, a.repeats, not a.no_captum, a.stride)
        print(to_markdown([r for r in rows if r.model == name], f"<!-- {name} -->"), flush=True)
    if not a.no_widget:
        rows += widget_resnet18_rows(a.repeats, device)
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")
    md = to_markdown(rows, f"### Occlusion 16x16 stride {a.stride}, {dev_name}, torch {torch.__version__}, {stamp}, median of {a.repeats} runs")
    write_results(a.out, f"{device.type}-{stamp}-occlusion-incremental{'-' + a.tag if a.tag else ''}", dev_name, rows, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
