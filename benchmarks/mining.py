"""Dataset mining (issue 19): scan throughput against plain inference, 1 vs 2 processes, projection cost.

Three measurements, each against a baseline of the same run:

* **scan vs inference** (one process): :func:`~saliency_widget.analysis.mine`'s scan over an
  in-memory dataset of bundled-model scenes (two layers, k = 9) against a plain
  ``torch.no_grad()`` loop over the same DataLoader batches (target: throughput >= 0.85x);
  the same for VGG-16 (random weights) at 224 px to its last conv block;
* **1 vs 2 processes**: ``torchrun --nproc_per_node=P -m saliency_widget.mine`` over an image
  folder of PNG scenes, the scan's images/s (the cores are shared: each process gets 2 / P threads);
* **projection pass**: ms per (channel, winner) projection and patch.

From the per-image costs it prints projected times for ImageNet val (50k) and train (1.28M)
on 1 and 8 processes. They are CPU-measured: on GPUs the scan/inference ratio carries over,
the absolute times do not (multiply your GPU's plain inference time by the ratio).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from saliency_widget.analysis import mine
from saliency_widget.analysis.running import RunningTopK
from saliency_widget.analysis.scanner import LayerScanner
from saliency_widget.data import ShapesDataset
from saliency_widget.engine import Explainer, LayerKey
from saliency_widget.models import shapes_cnn

from .run import Row

SHAPES_LAYERS = ["features.relu3", "features.relu5"]
VGG_LAYER = "features.29"  # relu of conv5_3, the last conv block
TARGET = ("<=", round(1 / 0.85, 3))  # scan time / inference time: throughput >= 0.85x
IMAGENET = {"ImageNet val (50k)": 50_000, "ImageNet train (1.28M)": 1_281_167}


def _scenes(n: int) -> torch.Tensor:
    """``(n, 3, 128, 128)`` bundled-model inputs: 64 px scenes upsampled (generating 128 px ones is slow)."""
    data = ShapesDataset(n, size=64, seed=19)
    x = torch.stack([data[i][0] for i in range(n)])
    return torch.nn.functional.interpolate(x, size=128, mode="bilinear", align_corners=False)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _inference_ms(model: torch.nn.Module, ds: TensorDataset, batch: int) -> float:
    """Plain inference over the DataLoader's batches, each moved to the model's device (as mine() moves them)."""
    device = next(model.parameters()).device
    _sync(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        for (b,) in DataLoader(ds, batch_size=batch):
            model(b.to(device))
    _sync(device)
    return (time.perf_counter() - t0) * 1e3


def _mine_ms(model: torch.nn.Module, ds: TensorDataset, layers: list[str], batch: int, out: Path, project: int) -> tuple[float, float, int]:
    """``(scan ms, projection ms, projections)`` of one fresh mine() (project_batch ``project``)."""
    idx = mine(model, ds, layers, out, k=9, batch_size=batch, progress=False, restart=True, project_batch=project)
    t = idx.manifest["timing"]
    pairs = sum(len(idx.channels(layer)) * idx.k for layer in idx.layers)
    return t["scan_s"] * 1e3, t["project_s"] * 1e3, pairs


def _scan_rows(tag: str, model: torch.nn.Module, x: torch.Tensor, layers: list[str], batch: int, repeats: int, tmp: Path) -> tuple[list[Row], float, float]:
    ds = TensorDataset(x)
    inf, scan = [], []
    proj = (0.0, 1)
    for r in range(repeats):  # interleaved: the machine's load hits both alike
        inf.append(_inference_ms(model, ds, batch))
        s, p, pairs = _mine_ms(model, ds, layers, batch, tmp / f"{tag}{r}", 64)
        scan.append(s)
        proj = (p, pairs)
    base, ours = statistics.median(inf), statistics.median(scan)
    n = len(x)
    rows = [
        Row(tag, batch, f"no_grad inference ({n} images)", base, "", None, note=f"{n / base * 1e3:.1f} img/s", samples_ms=inf),
        Row(tag, batch, f"mining scan, {'+'.join(layers)}", ours, f"no_grad inference ({n} images)", ours / base,
            f"{TARGET[0]} {TARGET[1]}", ours / base <= TARGET[1], f"{n / ours * 1e3:.1f} img/s; throughput {base / ours:.2f}x inference",
            samples_ms=scan),
        Row(tag, batch, "projection pass (per projection)", proj[0] / proj[1], "", None,
            note=f"{proj[1]} projections + patches in {proj[0] / 1e3:.1f} s"),
    ]
    return rows, ours / n, base / n


def _vgg_projection_ms(model: torch.nn.Module, x: torch.Tensor) -> float:
    """ms per projection to VGG_LAYER: one chunk of len(x) (channel, winner) pairs, as the projection pass runs them."""
    ex = Explainer(model, x, stop_at=(VGG_LAYER, 0), retain_graph=False)
    _sync(x.device)
    t0 = time.perf_counter()
    ex.project(VGG_LAYER, torch.arange(len(x)), position=torch.tensor([[7, 7]] * len(x)))
    _sync(x.device)
    return (time.perf_counter() - t0) * 1e3 / len(x)


def _processes(n: int, procs: tuple[int, ...], tmp: Path, repeats: int, device: torch.device | None = None) -> list[Row]:
    """Scan images/s of torchrun with P processes (one thread each) over a folder of n PNG scenes, runs interleaved."""
    from PIL import Image

    folder = tmp / "scenes"
    folder.mkdir(exist_ok=True)
    data = ShapesDataset(n, size=64, seed=23, transform=lambda a: torch.from_numpy(a.copy()))
    for i in range(n):
        Image.fromarray(data[i][0].numpy()).resize((128, 128)).save(folder / f"{i:05d}.png")
    root = Path(__file__).resolve().parents[1]
    times: dict[int, list[float]] = {p: [] for p in procs}
    proj: dict[int, float] = {}
    errors: dict[int, str] = {}
    for r in range(repeats):
        for p in procs:
            out = tmp / f"procs{p}-{r}"
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={p}", "-m", "saliency_widget.mine",
                   "--data", str(folder), "--layers", "features.relu3", "--out", str(out), "--batch-size", "32", "--quiet"]
            if device is None or device.type == "cpu":  # on cuda each rank takes mine's default, cuda:LOCAL_RANK (nccl)
                cmd += ["--device", "cpu"]
            env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
            res = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=1800)
            if res.returncode != 0:
                errors[p] = res.stderr[-300:]
                continue
            t = json.loads((out / "manifest.json").read_text())["timing"]
            times[p].append(t["scan_s"] * 1e3)
            proj[p] = t["project_s"]
    rows: list[Row] = []
    first = f"mining scan, {procs[0]} process(es) (image folder)"
    base = statistics.median(times[procs[0]]) if times[procs[0]] else None
    for p in procs:
        if not times[p]:
            rows.append(Row("shapes", 32, f"mining scan, {p} process(es) (image folder)", None, "", None, note=f"failed: {errors.get(p, '')}"))
            continue
        ms = statistics.median(times[p])
        rows.append(Row("shapes", 32, f"mining scan, {p} process(es) (image folder)", ms, "" if p == procs[0] else first,
                        None if p == procs[0] or base is None else ms / base,
                        note=f"{n / ms * 1e3:.1f} img/s incl. PNG decoding, 1 thread per process; projections {proj[p]:.1f} s",
                        samples_ms=times[p]))
    return rows


def _projected(per_image_ms: float, per_projection_ms: float, pairs: int, efficiency: float) -> list[Row]:
    rows = []
    for name, n in IMAGENET.items():
        for procs in (1, 8):
            scale = 1.0 if procs == 1 else procs * efficiency
            total_s = (n * per_image_ms + pairs * per_projection_ms) / 1e3 / scale
            rows.append(Row("vgg16 (projected)", 0, f"{name}, {procs} process(es)", total_s * 1e3, "", None,
                            note=f"{total_s / 3600:.1f} h = scan {n} x {per_image_ms:.0f} ms + {pairs} projections x "
                                 f"{per_projection_ms:.0f} ms, / {scale:.1f}; CPU-measured costs, not a GPU measurement"))
    return rows


def mining_rows(
    repeats: int = 3, n_images: int = 256, vgg_images: int = 8, procs: tuple[int, ...] = (1, 2),
    parts: tuple[str, ...] = ("scan", "vgg", "procs"), device: torch.device | str = "cpu",
) -> list[Row]:
    """The mining rows of ``parts`` (see the module docstring); rows as in :mod:`benchmarks.run`.

    On ``cuda`` the models run there (the datasets stay on the CPU, as a DataLoader's do) and
    the torchrun case uses nccl with one GPU per process (``mine``'s default device
    ``cuda:LOCAL_RANK``): give ``procs`` no more processes than GPUs.
    """
    torch.manual_seed(0)
    device = torch.device(device)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "scan" in parts:
            rows += _scan_rows("shapes", shapes_cnn().eval().to(device), _scenes(n_images), SHAPES_LAYERS, 32, repeats, tmp)[0]
        if "procs" in parts and procs:
            rows += _processes(n_images, procs, tmp, repeats, device)
        if "vgg" in parts:
            rows += _vgg_rows(repeats, vgg_images, tmp, device)
    return rows


def _vgg_rows(repeats: int, vgg_images: int, tmp: Path, device: torch.device | None = None) -> list[Row]:
    """VGG-16 (random weights, 224 px): scan vs inference, projection cost, and the ImageNet projections."""
    device = device or torch.device("cpu")
    rows: list[Row] = []
    import torchvision

    vgg = torchvision.models.vgg16(weights=None).eval().to(device)
    xv = torch.randn(vgg_images, 3, 224, 224)
    ds = TensorDataset(xv)
    inf, scan = [], []
    for _r in range(max(1, min(repeats, 2))):
        inf.append(_inference_ms(vgg, ds, 4))
        # mine()'s scan loop (its projection pass over 512 x 9 VGG winners would take an hour on this CPU)
        _sync(device)
        t0 = time.perf_counter()
        scanner, run = LayerScanner(vgg, [LayerKey(VGG_LAYER)]), RunningTopK(9)
        for first, (b,) in zip(range(0, vgg_images, 4), DataLoader(ds, batch_size=4)):
            run.update(scanner(b.to(device))[LayerKey(VGG_LAYER)], torch.arange(first, first + len(b), device=device))
        _sync(device)
        scan.append((time.perf_counter() - t0) * 1e3)
    base, ours = statistics.median(inf), statistics.median(scan)
    rows.append(Row("vgg16", 4, f"no_grad inference ({vgg_images} images)", base, "", None, samples_ms=inf))
    rows.append(Row("vgg16", 4, f"mining scan to {VGG_LAYER}", ours, f"no_grad inference ({vgg_images} images)", ours / base,
                    f"{TARGET[0]} {TARGET[1]}", ours / base <= TARGET[1], f"throughput {base / ours:.2f}x inference", samples_ms=scan))
    per_proj = _vgg_projection_ms(vgg, xv[:4].to(device))
    rows.append(Row("vgg16", 4, "projection pass (per projection)", per_proj, "", None, note="chunk of 4 pairs at 224 px"))
    rows += _projected(ours / vgg_images, per_proj, 512 * 9, 1.0)
    return rows
