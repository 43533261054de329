"""The widget's kernel-side click-to-PNG on ResNet-50: from a click on an activation to new PNG bytes.

An ``explore()`` explorer on a random-weight ResNet-50 (224², the device given), a middle layer
(the last ReLU of ``layer3``) selected; each timed step is one
:meth:`~saliency_widget.widget.Explorer.click_activation` at a new position, then
:meth:`~saliency_widget.widget.Explorer.wait` until the render worker has the new panels' PNG
bytes (the Zeiler-Fergus projection of the clicked unit, its receptive-field patch, the map and
the feature map). Python side only: no browser. The baselines, measured in the same run on the
same model and image: the floor (one forward plus one backward to the input in plain autograd)
and the one-shot ``sw.project`` of the same unit::

    python -m benchmarks.widget                      # CPU
    python -m benchmarks.widget --device cuda        # what benchmarks/gpu.sh runs

It prints a markdown table and writes ``benchmarks/results/<device>-<date>-widget-click.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import platform
import statistics
import sys

import torch

import saliency_widget as sw

from .run import RESULTS, Row, floor_fn, measure, to_markdown, write_results

MODEL = "resnet50"


def _middle_relu(options: list[str]) -> str:
    """The last ReLU execution of ``layer3`` among the explorer's layer keys (or the middle key)."""
    keys = [k for k in options if k.startswith("layer3.") and ".relu" in k]
    return keys[-1] if keys else options[len(options) // 2]


def click_rows(device: torch.device, repeats: int) -> list[Row]:
    """Rows: floor, one-shot projection, and the explorer's click -> PNG bytes, on ResNet-50."""
    import torchvision  # noqa: PLC0415

    from saliency_widget.widget import explore  # noqa: PLC0415

    model = torchvision.models.resnet50(weights=None).eval().to(device)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(device)
    with torch.no_grad():
        t = model(x).argmax(1)
    rows: list[Row] = []
    floor = statistics.median(s := measure(floor_fn(model, x, t), device, repeats, 2))
    rows.append(Row(MODEL, 1, "floor: forward + backward (autograd)", round(floor, 3), "", None,
                    samples_ms=[round(v, 3) for v in s]))
    w = explore(model, x[0].cpu(), device=device)
    try:
        if not w.wait(300):
            raise RuntimeError("the explorer's first render took over 300 s")
        layer = _middle_relu([v for _, v in w.ui.w_layer.options])
        w.layer = layer
        w.wait(300)
        key = sw.LayerKey.parse(layer)
        if w.explainer is None:
            raise RuntimeError("the explorer has no Explainer after its first render")
        # click units that fired (a unit at 0 has an all-zero projection: a message, no image)
        act = w.explainer.activation(key.name, key.call)[0, w.channel].detach().cpu()
        order = act.flatten().argsort(descending=True)
        live = [divmod(int(i), act.shape[-1]) for i in order if act.flatten()[i] > 0][: 2 * repeats + 4]
        if len(live) < 2:
            raise RuntimeError(f"filter {w.channel} of {layer} fired at {len(live)} position(s): nothing to click")
        spots = iter(live[i % len(live)] for i in range(10**6))

        def click() -> None:
            w.click_activation(*next(spots))
            if not w.wait(300):
                raise RuntimeError("a click's render took over 300 s")
            if "projection" not in w.images:
                raise RuntimeError(f"the click rendered no projection (panels: {sorted(w.images)})")

        samples = measure(click, device, repeats, 2)
    finally:
        w.close()
    med = statistics.median(samples)
    proj = statistics.median(s2 := measure(lambda: sw.project(model, x, key.name, w.channel, (1, 1), call=key.call),
                                           device, repeats, 2))
    rows.append(Row(MODEL, 1, f"one-shot sw.project ({layer})", round(proj, 3), "floor", round(proj / floor, 3),
                    samples_ms=[round(v, 3) for v in s2]))
    rows.append(Row(MODEL, 1, "widget click on an activation -> PNG bytes", round(med, 3), "floor", round(med / floor, 3),
                    note=f"layer {layer}, projection + patch + panels, Python side", samples_ms=[round(v, 3) for v in samples]))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.widget", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=10, help="timed clicks (median reported)")
    p.add_argument("--tag", default="", help="suffix of the result file names")
    p.add_argument("--out", default=str(RESULTS), help="folder for the JSON and markdown results")
    a = p.parse_args(argv)
    device = torch.device(a.device)
    rows = click_rows(device, a.repeats)
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")
    md = to_markdown(rows, f"### Widget click-to-PNG, {dev_name}, torch {torch.__version__}, {stamp}, median of {a.repeats}")
    write_results(a.out, f"{device.type}-{stamp}-widget-click{'-' + a.tag if a.tag else ''}", dev_name, rows, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
