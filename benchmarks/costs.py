"""The last fixed costs (issue 33), each against its baseline in interleaved rounds.

Cases, each a ratio of medians over rounds in which the case and its baseline alternate (so
the load of other processes on a shared machine hits both alike), by wall clock and by the
process's CPU time:

* ``single``: the bundled model's one-shot maps at batch 1 (``sw.saliency``, gradient,
  deconvnet, guided backprop) against the floor (one forward plus one backward to the input
  in plain autograd); target <= 1.10;
* ``three``: the three maps on one Explainer (one recorded forward, three backwards) on
  ResNet-50 and VGG-16 (``weights=None``, 224², batch 1) against the floor; target <= 2.0;
* ``plan``: the widget's occlusion call on ResNet-18 at 224² (``Explainer.saliency(None,
  "occlusion")``) with the incremental plan cache emptied before each call (before) and kept
  (after)::

    python -m benchmarks.costs                       # all cases, CPU
    python -m benchmarks.costs --cases single --rounds 60

It prints a markdown table (with the load average) and writes
``benchmarks/results/<device>-<date>-costs.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

import saliency_widget as sw

from .run import RESULTS, Row, _sync, build_model, floor_fn, to_markdown, write_results

METHODS = ("gradient", "deconvnet", "guided_backprop")


def interleaved(cases: dict[str, Callable[[], Any]], device: torch.device, rounds: int, warmup: int = 2) -> dict[str, tuple[list[float], list[float]]]:
    """``{case: (wall ms, CPU ms)}`` over ``rounds`` rounds, each running every case once in turn."""
    for _ in range(warmup):
        for fn in cases.values():
            fn()
    out: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in cases}
    for _ in range(rounds):
        for k, fn in cases.items():
            _sync(device)
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            _sync(device)
            out[k][0].append((time.perf_counter() - t0) * 1e3)
            out[k][1].append((time.process_time() - c0) * 1e3)
    return out


def _rows(model: str, samples: dict[str, tuple[list[float], list[float]]], base: str, target: str, note: str = "") -> list[Row]:
    bw, bc = (statistics.median(v) for v in samples[base])
    rows = [Row(model, 1, base, round(bw, 3), "", None, note=f"CPU time {bc:.2f} ms", samples_ms=[round(v, 3) for v in samples[base][0]])]
    for k, (w, c) in samples.items():
        if k == base:
            continue
        mw, mc = statistics.median(w), statistics.median(c)
        op, bound = target.split()
        rows.append(Row(model, 1, k, round(mw, 3), base, round(mw / bw, 3), target, mw / bw <= float(bound),
                        ", ".join(filter(None, [note, f"CPU time {mc:.2f} ms, {mc / bc:.3f}x by CPU time"])),
                        [round(v, 3) for v in w]))
    return rows


def single_rows(device: torch.device, rounds: int) -> list[Row]:
    model, size, _ = build_model("shapes")
    model = model.to(device)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    with torch.no_grad():
        t = model(x).argmax(1)
    cases: dict[str, Callable[[], Any]] = {"floor: forward + backward (autograd)": floor_fn(model, x, t)}
    for m in METHODS:
        cases[m] = lambda m=m: sw.saliency(model, x, t, method=m)
    return _rows("shapes", interleaved(cases, device, rounds), "floor: forward + backward (autograd)", "<= 1.10")


def three_rows(name: str, device: torch.device, rounds: int) -> list[Row]:
    model, size, _ = build_model(name)
    model = model.to(device)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    with torch.no_grad():
        t = model(x).argmax(1)

    def three() -> None:
        ex = sw.Explainer(model, x, record_layers=False)
        for m in METHODS:
            ex.saliency(t, m)

    def autograd_three() -> None:
        # the same work in plain autograd (three plain gradients): what one forward and three
        # backwards through a kept graph cost without any rule, the bound for "ours"
        xr = x.detach().requires_grad_(True)
        score = model(xr).gather(1, t.view(-1, 1)).sum()
        for _ in range(3):
            torch.autograd.grad(score, xr, retain_graph=True)

    cases = {"floor: forward + backward (autograd)": floor_fn(model, x, t), "all three maps, ours": three,
             "plain autograd, same work (forward + three kept backwards)": autograd_three}
    return _rows(name, interleaved(cases, device, rounds, warmup=1), "floor: forward + backward (autograd)", "<= 2.0",
                 "one forward + three backwards")


def plan_rows(device: torch.device, rounds: int) -> list[Row]:
    import torchvision  # noqa: PLC0415

    from saliency_widget.engine.plancache import clear_plans  # noqa: PLC0415

    model = torchvision.models.resnet18(weights=None).eval().to(device)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(device)
    ex = sw.Explainer(model, x)  # what the widget's InputState builds per image

    def before() -> None:
        clear_plans()  # no cache: one trace + one forward per call, as before
        ex.saliency(None, "occlusion")

    def after() -> None:
        ex.saliency(None, "occlusion")

    samples = interleaved({"widget occlusion map, plan rebuilt (before)": before, "widget occlusion map, plan cached (after)": after},
                          device, rounds, warmup=1)
    rows = _rows("resnet18 (widget)", samples, "widget occlusion map, plan rebuilt (before)", "<= 1.0",
                 "incremental, probability, window 16 stride 8")
    # the part the cache removes, alone: one trace + one forward, against a kept plan's checks
    from saliency_widget.engine.checks import eval_mode  # noqa: PLC0415
    from saliency_widget.engine.incremental import build_plan  # noqa: PLC0415
    from saliency_widget.engine.plancache import cached_plan  # noqa: PLC0415

    with torch.no_grad(), eval_mode(model):
        base = model(x)

        def agrees(out: Any) -> bool:
            return bool(torch.allclose(out, base, rtol=1e-4, atol=1e-6))

        cached_plan(model, x, agrees, (16, 8, None))
        parts = interleaved({"plan build (trace + forward)": lambda: build_plan(model, x, agrees),
                             "kept plan's checks (lookup)": lambda: cached_plan(model, x, agrees, (16, 8, None))},
                            device, 5, warmup=1)
    return rows + _rows("resnet18 (widget)", parts, "plan build (trace + forward)", "<= 1.0")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.costs", description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default="single,three,plan", help="comma list of single, three, plan")
    p.add_argument("--models", default="resnet50,vgg16", help="models of the three-maps case")
    p.add_argument("--rounds", type=int, default=40, help="interleaved rounds of the single-map case (three: a quarter, plan: 3)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--tag", default="", help="suffix of the result file names")
    p.add_argument("--out", default=str(RESULTS), help="folder for the JSON and markdown results")
    p.add_argument("--note", default="", help="a paragraph added under the table (e.g. what ran alongside)")
    a = p.parse_args(argv)
    device = torch.device(a.device)
    cases = a.cases.split(",")
    load0 = os.getloadavg()
    rows: list[Row] = []
    if "single" in cases:
        rows += single_rows(device, a.rounds)
        print(to_markdown(rows, "<!-- single -->"), flush=True)
    if "three" in cases:
        for name in [n for n in a.models.split(",") if n]:
            rows += three_rows(name, device, max(3, a.rounds // 4))
            print(to_markdown([r for r in rows if r.model == name], f"<!-- three {name} -->"), flush=True)
    if "plan" in cases:
        rows += plan_rows(device, 3)
    load1 = os.getloadavg()
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")
    md = to_markdown(rows, f"### Fixed costs (issue 33), {dev_name}, torch {torch.__version__}, {stamp}, interleaved rounds; "
                           f"load average {load0[0]:.1f} at the start, {load1[0]:.1f} at the end")
    md += ("\n\nEach case alternates with its baseline in interleaved rounds; the ratio column is by wall clock, the "
           "notes give the process's CPU time and the ratio by CPU time. On a CPU shared with other processes (a load "
           "average above the core count) the wall clock mostly measures their load: read the CPU-time ratio.\n")
    if a.note:
        md += f"\n{a.note}\n"
    write_results(a.out, f"{device.type}-{stamp}-costs{'-' + a.tag if a.tag else ''}", dev_name, rows, md,
                  load=[load0, load1], note=a.note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
