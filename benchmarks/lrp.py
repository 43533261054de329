"""LRP benchmark: ours against zennit on the same map, in one run.

zennit's ``Gradient`` attributor with the same composite and its canonizers is the floor; rows
give the median wall time of each case (alternating runs, so load changes hit both) and its
ratio to the floor (target ≤ 1.2×), and the largest difference of the maps::

    python -m benchmarks.lrp                                # resnet18, vgg11 at 224², epsilon_plus, batch 1
    python -m benchmarks.lrp --models resnet18 --size 112 --repeats 3 --composites epsilon_plus,alpha_beta

It prints a markdown table and writes ``benchmarks/results/<device>-<date>-lrp.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

import saliency_widget as sw
from saliency_widget.engine.lrp import lrp_relevance
from saliency_widget.engine.lrprules import make_composite

from .run import RESULTS, Row, to_markdown, write_results

TARGET = 1.2  # ours / zennit, the bound


def _zennit(name: str, arch: str) -> Any:
    from zennit import composites as zc
    from zennit.rules import Epsilon
    from zennit.torchvision import ResNetCanonizer, VGGCanonizer
    from zennit.types import Convolution

    can = [ResNetCanonizer() if arch.startswith("resnet") else VGGCanonizer()]
    if name == "epsilon":
        return zc.LayerMapComposite(layer_map=[*zc.layer_map_base(), (Convolution, Epsilon()), (nn.Linear, Epsilon())],
                                    canonizers=can)
    if name == "epsilon_gamma_box":
        return zc.EpsilonGammaBox(low=-3.0, high=3.0, canonizers=can)
    return {"epsilon_plus": zc.EpsilonPlus, "epsilon_plus_flat": zc.EpsilonPlusFlat,
            "alpha_beta": zc.EpsilonAlpha2Beta1}[name](canonizers=can)


def _median_ms(fn: Callable[[], Any], samples: list[float]) -> None:
    t0 = time.perf_counter()
    fn()
    samples.append((time.perf_counter() - t0) * 1000)


def rows_for(arch: str, size: int, composite: str, repeats: int, device: torch.device) -> list[Row]:
    """Rows of one model and composite: zennit (the floor), ours one-shot, ours without the explainer's forward."""
    import torchvision
    from zennit.attribution import Gradient

    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(weights=None).eval().to(device)
    for m in model.modules():  # zennit's merged batch norm keeps eps (see tests/engine/test_lrp.py)
        if isinstance(m, nn.BatchNorm2d):
            m.eps = 0.0
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1)).to(device)
    with torch.no_grad():
        target = int(model(x).argmax(1))
    seed = torch.zeros(1, 1000, device=device)
    seed[0, target] = 1.0
    box = {"low": -3.0, "high": 3.0} if composite == "epsilon_gamma_box" else {}

    def theirs() -> torch.Tensor:
        xi = x.clone().requires_grad_(True)
        with Gradient(model, _zennit(composite, arch)) as attributor:
            return attributor(xi, seed)[1]

    def ours() -> torch.Tensor:
        return sw.saliency(model, x, target=target, method="lrp", composite=composite, **box)

    def core() -> torch.Tensor:
        return lrp_relevance(model, x, seed, make_composite(composite, **box))

    a, b = theirs(), ours()  # warm-up, and the agreement
    diff = float((a - b).abs().max() / a.abs().max())
    t: dict[str, list[float]] = {"zennit": [], "ours": [], "core": []}
    for _ in range(repeats):
        _median_ms(theirs, t["zennit"])
        _median_ms(ours, t["ours"])
        _median_ms(core, t["core"])
    floor = statistics.median(t["zennit"])
    name = f"{arch} {size}²"
    rows = [Row(name, 1, f"LRP {composite}: zennit Gradient + canonizers", floor, "", None, samples_ms=t["zennit"])]
    for key, case in (("ours", "ours, sw.saliency (one-shot: explainer forward + LRP)"),
                      ("core", "ours, the LRP pass alone (engine.lrp.lrp_relevance)")):
        med = statistics.median(t[key])
        rows.append(Row(name, 1, f"LRP {composite}: {case}", med, "zennit", med / floor, f"<= {TARGET}x",
                        med / floor <= TARGET, note=f"max |ours - zennit| / max |zennit| = {diff:.1e}",
                        samples_ms=t[key]))
    return rows


def main(argv: list[str] | None = None) -> list[Row]:
    """Run the benchmark; return the rows (also printed and written to ``benchmarks/results``)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--models", default="resnet18,vgg11")
    p.add_argument("--composites", default="epsilon_plus")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(RESULTS))
    a = p.parse_args(argv)
    device = torch.device(a.device)
    rows = [r for arch in a.models.split(",") for comp in a.composites.split(",")
            for r in rows_for(arch, a.size, comp, a.repeats, device)]
    dev_name = (torch.cuda.get_device_name(device) if device.type == "cuda"
                else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)")
    stamp = _dt.date.today().isoformat()
    md = to_markdown(rows, f"### LRP vs zennit, {dev_name}, torch {torch.__version__}, {stamp}, median of {a.repeats} runs")
    write_results(a.out, f"{device.type}-{stamp}-lrp", dev_name, rows, md)
    return rows


if __name__ == "__main__":
    main()
