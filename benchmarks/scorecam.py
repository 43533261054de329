"""Score-CAM benchmark: ours against pytorch-grad-cam's ``ScoreCAM``, same layer, same batch size, one run.

Both score every channel's masked copy of the input (``K`` forwards); runs alternate, and each
row gives the median wall time and process CPU time over ``--repeats``, and the ratio of
pytorch-grad-cam's time over ours::

    python -m benchmarks.scorecam                     # bundled model 128² (relu5, 64 maps), resnet18 112² (layer3, 256 maps)
    python -m benchmarks.scorecam --repeats 5 --batch-size 64

It prints a markdown table and writes ``benchmarks/results/<device>-<date>-scorecam.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

import saliency_widget as sw

RESULTS = Path(__file__).parent / "results"


def _models() -> dict[str, tuple[nn.Module, str, int]]:
    import torchvision

    from saliency_widget.models import shapes_cnn

    torch.manual_seed(0)
    return {
        "shapes 128² (features.relu5, 64 maps)": (shapes_cnn(pretrained=False).eval(), "features.relu5", 128),
        "resnet18 112² (layer3, 256 maps)": (torchvision.models.resnet18(weights=None).eval(), "layer3", 112),
    }


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def _bench(name: str, model: nn.Module, layer: str, size: int, batch_size: int, repeats: int, device: str) -> dict[str, Any]:
    """One row: median wall and CPU time of ours and pytorch-grad-cam's, their ratios, and the maps' correlation."""
    from pytorch_grad_cam import ScoreCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = model.to(device)
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1)).to(device)
    with torch.no_grad():
        target = int(model(x).argmax(1))

    def ours() -> torch.Tensor:
        return sw.saliency(model, x, target=target, method="scorecam", layer=layer, batch_size=batch_size)

    def theirs() -> Any:
        with ScoreCAM(model=model, target_layers=[model.get_submodule(layer)]) as cam:
            cam.batch_size = batch_size
            return cam(input_tensor=x, targets=[ClassifierOutputTarget(target)])

    a, b = ours(), theirs()  # warm-up, and the agreement
    corr = float(torch.corrcoef(torch.stack([a[0, 0].double().cpu().flatten(), torch.from_numpy(b[0]).double().flatten()]))[0, 1])
    t_ours, t_theirs = [], []
    for _ in range(repeats):  # alternate, so load changes hit both
        t_ours.append(_timed(ours))
        t_theirs.append(_timed(theirs))
    wo, co = statistics.median(t[0] for t in t_ours), statistics.median(t[1] for t in t_ours)
    wt, ct = statistics.median(t[0] for t in t_theirs), statistics.median(t[1] for t in t_theirs)
    return {"model": name, "batch_size": batch_size, "ours_s": wo, "ours_cpu_s": co,
            "pytorch_grad_cam_s": wt, "pytorch_grad_cam_cpu_s": ct,
            "ratio_wall": wt / wo, "ratio_cpu": ct / co, "corr": corr}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the benchmark; return the rows (also printed and written to ``benchmarks/results``)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")  # pytorch-grad-cam's progress bar
    rows = [_bench(name, model, layer, size, args.batch_size, args.repeats, args.device)
            for name, (model, layer, size) in _models().items()]
    md = ["| model (batch size) | ours | pytorch-grad-cam ScoreCAM | ratio (theirs / ours), wall / CPU | corr |", "|---|---:|---:|---|---:|"]
    md += [f"| {r['model']} ({r['batch_size']}) | {r['ours_s']:.2f} s | {r['pytorch_grad_cam_s']:.2f} s | "
           f"{r['ratio_wall']:.2f}× / {r['ratio_cpu']:.2f}× | {r['corr']:.4f} |" for r in rows]
    text = "\n".join(md)
    print(text)
    stem = RESULTS / f"{args.device}-{_dt.date.today().isoformat()}-scorecam"
    RESULTS.mkdir(exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps({"torch": torch.__version__, "repeats": args.repeats, "rows": rows}, indent=1))
    stem.with_suffix(".md").write_text(f"# Score-CAM vs pytorch-grad-cam (median of {args.repeats}, torch {torch.__version__})\n\n{text}\n")
    return rows


if __name__ == "__main__":
    main()
