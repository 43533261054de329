"""The second pass of :mod:`.mining`: receptive fields, projections and patches of the winners, and the index files.

The (layer, channel, winner) triples are listed in index order and cut into chunks of
``project_batch`` per layer; chunk ``c`` belongs to rank ``c % world``. Each chunk is one
forward to the layer and one DeconvNet backward (:meth:`Explainer.project`), the same chunk
whatever the process count, so the PNGs are identical for 1 or N processes.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..data.atomic import write_atomic, write_json
from ..engine.capture import layer_layout
from ..engine.checks import model_device_dtype
from ..engine.keys import LayerKey
from ..engine.receptive import receptive_fields
from ..engine.session import Explainer
from ..errors import InputError
from .index import layer_file
from .shards import Shard, shard_batches

__all__ = ["npz_bytes", "project_winners", "write_index"]


def _dataset(data: Any) -> Any:
    if isinstance(data, DataLoader):
        return data.dataset if isinstance(data.dataset, Dataset) and hasattr(data.dataset, "__len__") else None
    return data if isinstance(data, Dataset) and hasattr(data, "__len__") else None


def _load(data: Any, ids: set[int], limit: int | None) -> dict[int, torch.Tensor]:
    """The model inputs of images ``ids``: read by index from a dataset, else found by iterating the data again."""
    ds = _dataset(data)
    if ds is not None:
        out = {}
        for i in sorted(ids):
            item = ds[i]
            x = item[0] if isinstance(item, (tuple, list)) else item
            if not isinstance(x, torch.Tensor) or x.dim() != 3:
                raise InputError(f"dataset item {i} must be an image tensor (C, H, W) or a tuple starting with one")
            out[i] = x
        return out
    found: dict[int, torch.Tensor] = {}
    for _b, first, x in shard_batches(data, Shard(), limit=limit):
        for j in range(x.shape[0]):
            if first + j in ids:
                found[first + j] = x[j]
        if len(found) == len(ids):
            break
    return found


def _describe(data: Any, i: int, x: torch.Tensor) -> tuple[str, str]:
    ds = _dataset(data) if _dataset(data) is not None else data
    desc = getattr(ds, "describe", None)
    fhash = getattr(ds, "file_hash", None)
    name = str(desc(i)) if callable(desc) else f"#{i}"
    digest = str(fhash(i)) if callable(fhash) else hashlib.sha256(x.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
    return name, digest


def _write_png(path: Path, rgb: np.ndarray) -> None:
    from ..viz import render as R

    write_atomic(path, R.to_png(np.ascontiguousarray(rgb)))


def project_winners(
    model: nn.Module, data: Any, keys: Sequence[LayerKey], merged: dict[str, Any], root: Path, where: Shard,
    method: str, project_batch: int, mean: Sequence[float] | None, std: Sequence[float] | None, limit: int | None,
    progress: bool = False,
) -> tuple[dict[str, np.ndarray], dict[int, tuple[str, str]]]:
    """Write this rank's patch PNGs; return every layer's ``(C, k, 4)`` boxes and this rank's ``{image: (name, sha256)}``.

    With ``progress``, rank 0 shows a bar of its projections (this phase often outlasts the scan).
    """
    from ..viz import render as R

    device, dtype = model_device_dtype(model)
    chunks: list[tuple[LayerKey, list[tuple[int, int, int, int, int]]]] = []
    for key in keys:
        st = merged[str(key)]
        rows = [(r, j, int(st["index"][r, j]), int(st["pos"][r, j, 0]), int(st["pos"][r, j, 1]))
                for r in range(st["index"].shape[0]) for j in range(st["index"].shape[1])]
        chunks += [(key, rows[s : s + project_batch]) for s in range(0, len(rows), project_batch)]
    mine = [c for n, c in enumerate(chunks) if n % where.world == where.rank]
    first_id = chunks[0][1][0][2]
    images = _load(data, {row[2] for _k, rows in mine for row in rows} | {first_id}, limit)
    sample = images[first_id].to(device=device or images[first_id].device, dtype=dtype or images[first_id].dtype)
    boxes: dict[str, np.ndarray] = {}
    box_of: dict[str, dict[tuple[int, int], tuple[int, int, int, int]]] = {}
    for key in keys:  # every rank: the boxes are needed for its patches and by rank 0 for the arrays
        st = merged[str(key)]
        pos = st["pos"].reshape(-1, 2).tolist()
        unique = sorted({(int(y), int(x)) for y, x in pos})
        lay = layer_layout(model, sample[None], key.name, key.call)
        found = receptive_fields(model, tuple(sample.shape), key.name, unique, key.call, sample.dtype, sample.device, layout=lay)
        box_of[str(key)] = dict(zip(unique, found))
        boxes[str(key)] = np.array([box_of[str(key)][(int(y), int(x))] for y, x in pos], dtype=np.int64).reshape(*st["pos"].shape[:2], 4)
        (root / "patches" / layer_file(key)).mkdir(parents=True, exist_ok=True)
    names: dict[int, tuple[str, str]] = {}
    bar = None
    if progress and where.rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(len(rows) for _k, rows in mine), desc="projecting the winners", unit="patch", smoothing=0.1)
    try:
        for key, rows in mine:
            imgs = torch.stack([images[i] for _r, _j, i, _y, _x in rows]).to(device=sample.device, dtype=sample.dtype)
            ch = torch.tensor([r for r, _j, _i, _y, _x in rows])
            yx = torch.tensor([(y, x) for _r, _j, _i, y, x in rows])
            ex = Explainer(model, imgs, stop_at=(key.name, key.call), retain_graph=False)
            proj = ex.project(key.name, ch, position=yx, call=key.call, method=method).detach().float().cpu()
            del ex
            folder = root / "patches" / layer_file(key)
            for n, (r, j, i, y, x) in enumerate(rows):
                y0, x0, y1, x1 = box_of[str(key)][(y, x)]
                img_rgb = R.input_to_rgb(images[i][:, y0:y1, x0:x1].float().cpu().numpy(), mean, std)
                rm = R.render_map(proj[n, :, y0:y1, x0:x1].numpy(), sign="signed", clip_percentile=99.5, cmap="coolwarm")
                proj_rgb = rm.rgb if rm.rgb is not None else np.full((max(1, y1 - y0), max(1, x1 - x0), 3), 255, np.uint8)
                _write_png(folder / f"c{r:04d}_{j}_img.png", img_rgb)
                _write_png(folder / f"c{r:04d}_{j}_proj.png", proj_rgb)
                if i not in names:
                    names[i] = _describe(data, i, images[i])
            if bar is not None:
                bar.update(len(rows))
    finally:
        if bar is not None:
            bar.close()
    return boxes, names


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An ``.npz`` (what ``numpy.load`` reads) with fixed zip timestamps, so equal arrays give equal bytes."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, arr in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)
            z.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue())
    return buf.getvalue()


def write_index(
    root: Path, keys: Sequence[LayerKey], merged: dict[str, Any], boxes: dict[str, np.ndarray],
    all_names: Sequence[dict[int, tuple[str, str]]], manifest: dict[str, Any],
) -> None:
    """Write the arrays (npz), images.json and, last and atomically, manifest.json (rank 0)."""
    (root / "layers").mkdir(exist_ok=True)
    layers = {}
    for key in keys:
        st = merged[str(key)]
        raw = npz_bytes({
            "channels": np.arange(st["index"].shape[0], dtype=np.int64), "values": st["values"].float().numpy(),
            "image": st["index"].numpy().astype(np.int64), "pos": st["pos"].numpy().astype(np.int64), "boxes": boxes[str(key)],
        })
        rel = f"layers/{layer_file(key)}.npz"
        write_atomic(root / rel, raw)
        layers[str(key)] = {"file": rel, "channels": int(st["index"].shape[0]), "sha256": hashlib.sha256(raw).hexdigest()}
    names: dict[int, tuple[str, str]] = {}
    for part in all_names:
        names.update(part)
    ids = sorted(names)
    write_json(root / "images.json", {"ids": ids, "names": [names[i][0] for i in ids], "sha256": [names[i][1] for i in ids]})
    write_json(root / "manifest.json", {**manifest, "layers": layers, "images": "images.json"})
