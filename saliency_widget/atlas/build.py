"""Build an atlas of a model: every filter of some layers with its top-9, projections, visualization and histogram.

:func:`build_atlas` runs on 1 process or on every rank of a torchrun job (the same call):

1. the top-9 index (:func:`~saliency_widget.analysis.mining.mine`, sharded; an existing index
   is loaded, never rescanned);
2. each filter's per-image maximum over the data (:mod:`.histograms`, one forward pass on the
   same shards);
3. the feature visualizations: all filters of one layer in one optimisation (layer ``i`` on
   rank ``i % world``, same seed whatever the process count);
4. rank 0 writes the pages (:mod:`.pages`) and, last, ``atlas.json``.

``atlas.json`` (format ``saliency-widget-atlas``, version 1)::

    {"format", "version", "title", "model": {spec, class, sha256, parameters, input},
     "data": {identity, images}, "k", "method", "featviz": {steps, size, param, seed, transforms},
     "index": path of the mining index relative to the site (null when outside it),
     "layers": {"<layer key>": {"dir", "channels", "shape", "page",
         "filters": [{"index", "page", "top": [9 paths], "projections": [9 paths], "visualization",
                      "values": [9], "images": [9 names], "visualization_value", "active", "median",
                      "histogram": {"edges", "counts"}}, ...]}},
     "timing": {mine_s, histogram_s, featviz_s, pages_s, total_s, world}}

Every path is relative to the site folder.
"""

from __future__ import annotations

import datetime as _dt
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..analysis.index import MiningIndex, layer_file, load_index, model_identity, preprocessing_identity
from ..analysis.mining import mine
from ..analysis.shards import Shard, all_gather_objects, barrier, resolve_shard
from ..data.atomic import write_atomic, write_json
from ..engine.api import layers as layer_list
from ..engine.checks import check_model, model_device_dtype
from ..engine.keys import LayerKey
from ..errors import InputError, LayerError, choices
from ..featviz import objectives as obj
from ..viz.featviz_page import to_pil
from ..viz.modelio import describe_model
from ..viz.visualize import visualize
from . import pages
from .histograms import activation_histograms

__all__ = ["FORMAT", "VERSION", "Atlas", "build_atlas", "site_size"]

FORMAT = "saliency-widget-atlas"
VERSION = 1


@dataclass(frozen=True)
class Atlas:
    """A built atlas.

    Attributes
    ----------
    root
        The site folder (open ``root / "index.html"``).
    manifest
        The content of ``atlas.json``.
    bytes
        Size of the site folder in bytes (every file under it).
    """

    root: Path
    manifest: dict[str, Any]
    bytes: int

    @property
    def seconds(self) -> float:
        """Wall time of the build."""
        return float(self.manifest["timing"]["total_s"])

    def summary(self) -> str:
        """One line: where, how many filters, size and time."""
        n = sum(len(v["filters"]) for v in self.manifest["layers"].values())
        t = self.manifest["timing"]
        return (f"wrote {self.root / 'index.html'}: {len(self.manifest['layers'])} layer(s), {n} filter page(s), "
                f"{self.bytes / 1e6:.1f} MB, {t['total_s']:.1f} s on {t['world']} process(es) (mining {t['mine_s']:.1f} s, "
                f"histograms {t['histogram_s']:.1f} s, feature visualization {t['featviz_s']:.1f} s, pages {t['pages_s']:.1f} s)")


def site_size(root: str | Path) -> int:
    """Bytes of every file under ``root``."""
    return sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())


def _first_image(data: Any) -> torch.Tensor:
    """One model input ``(1, C, H, W)`` from the data (to list the layers)."""
    from ..analysis.shards import shard_batches

    for _b, _first, x in shard_batches(data, Shard(), 1, limit=1):
        return x[:1]
    raise InputError("the data yielded no images; an atlas needs at least one")


def _check_channels(channels: Sequence[int] | None, key: str, count: int) -> list[int]:
    if channels is None:
        return list(range(count))
    bad = [c for c in channels if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < count]
    if bad:
        raise InputError(f"channel(s) {bad} out of range for layer {key!r}: it has {count} channels, valid channels are 0..{count - 1}")
    if not channels:
        raise InputError("channels names no channel; give None (all) or a non-empty list")
    return sorted(set(channels))


def _out_problem(out: Path, index: Path | None) -> str:
    """Why ``out`` cannot hold the site (a file, or a folder of something that is not an atlas), or ``""``."""
    if out.exists() and not out.is_dir():
        return f"--out {str(out)!r} is a file; give a folder for the atlas site"
    if out.is_dir() and not (out / "atlas.json").is_file():
        others = sorted(p.name for p in out.iterdir() if p.name not in ("index",) and not (index and p.resolve() == index.resolve()))
        if others:
            return (f"--out {str(out)!r} holds {', '.join(others[:5])} but no atlas.json; refusing to write an atlas over "
                    "it: choose a new or empty folder")
    return ""


def _load_existing(index: Path, model: nn.Module, keys: Sequence[LayerKey], data: Any) -> MiningIndex:
    """An index given with ``--index``: its model, layers and data must be the atlas's."""
    idx = load_index(index, model)
    missing = [str(k) for k in keys if str(k) not in idx.layers]
    if missing:
        raise LayerError(f"layer(s) {missing} are not in the index at {str(index)!r}; it holds {choices(idx.layers)} "
                         "(mine them into another index, or leave out --index)")
    ident = getattr(data.dataset if isinstance(data, torch.utils.data.DataLoader) else data, "identity", None)
    mined = (idx.manifest.get("config") or {}).get("data")
    if isinstance(ident, str) and isinstance(mined, str) and ident != mined:
        raise InputError(f"the index at {str(index)!r} was mined from {mined!r}, not from this data ({ident!r}); "
                         "give the same --data and --limit, or leave out --index")
    return idx


def _featviz(model: nn.Module, keys: Sequence[LayerKey], chans: dict[str, list[int]], out: Path, where: Shard, *, steps: int,
             size: int | None, param: str, seed: int, transforms: bool) -> tuple[dict[str, list[float]], int]:
    """Write the visualizations of this rank's layers as PNGs; return every layer's objective values (gathered) and the image side."""
    mine_: dict[str, list[float]] = {}
    side = 0
    for n, key in enumerate(keys):
        if n % where.world != where.rank:
            continue
        objectives = [obj.channel(str(key), c) for c in chans[str(key)]]
        vis = visualize(model, objectives, steps=steps, size=size, param=param, transforms="standard" if transforms else None, seed=seed)
        folder = out / "img" / layer_file(key)
        folder.mkdir(parents=True, exist_ok=True)
        for i, c in enumerate(chans[str(key)]):
            import io

            buf = io.BytesIO()
            to_pil(vis, i).save(buf, format="PNG")
            write_atomic(folder / f"fv_c{c:04d}.png", buf.getvalue())
        mine_[str(key)] = [float(v) for v in vis.values]
        side = int(vis.images.shape[-1])
    values: dict[str, list[float]] = {}
    sides = []
    for part, s in all_gather_objects((mine_, side), where):
        values.update(part)
        sides.append(s)
    return values, max(sides)


def _rel(path: Path, root: Path) -> str | None:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def build_atlas(
    model: nn.Module,
    data: Any,
    layers: Sequence[str | LayerKey],
    out: str | Path,
    *,
    index: str | Path | None = None,
    channels: Sequence[int] | None = None,
    limit: int | None = None,
    spec: str = "custom",
    data_name: str | None = None,
    title: str | None = None,
    k: int = 9,
    batch_size: int = 64,
    method: str = "deconvnet",
    steps: int = 128,
    size: int | None = None,
    param: str = "fourier",
    seed: int = 0,
    transforms: bool = True,
    shard: Any = "auto",
    restart: bool = False,
    progress: bool = False,
) -> Atlas:
    """Build the atlas site of ``layers`` of ``model`` over ``data`` into the folder ``out``.

    Parameters
    ----------
    model
        The network (not modified).
    data
        Images as :func:`~saliency_widget.analysis.mining.mine` takes them (a Dataset of ``(C, H, W)``
        model inputs, a sequential DataLoader, a list of batches).
    layers
        Layer keys with ``(B, C, h, w)`` outputs, e.g. ``["features.relu3", "features.relu5"]``.
    out
        The site folder (created; an older atlas in it is updated).
    index
        A mining index to reuse (loaded, not rescanned, when it exists; mined there when not).
        Default: ``out/index`` (reused when the same command runs again).
    channels
        Filters of every layer to show (default all); the index holds them all anyway.
    limit
        Only the first ``limit`` images.
    spec
        How the model was named (``--model``), shown on the index page.
    data_name
        How the data was named (``--data``), shown on the index page (default: its folder, else its identity).
    title
        Page title (default ``"Atlas of <spec>"``).
    k, batch_size, method
        Winners per filter, images per scan batch, ReLU rule of the projections (as for ``mine``).
    steps, size, param, seed, transforms
        The feature visualization (:func:`saliency_widget.visualize`): optimisation steps,
        image side (default the model's), parametrisation, seed, robustness transforms.
    shard
        As in :func:`~saliency_widget.analysis.shards.resolve_shard`: ``"auto"`` joins torchrun's group.
    restart
        Mine the index again (discard the one at ``index`` or ``out/index``).
    progress
        Progress bars while mining.

    Returns
    -------
    Atlas
        On every rank.

    Raises
    ------
    LayerError
        A layer the model (or the given index) does not have; the message lists the valid ones.
    InputError
        Bad channels, options or folders.
    """
    t_start = time.perf_counter()
    model = check_model(model)
    if isinstance(layers, (str, LayerKey)) or not layers:
        raise InputError(f"layers must be a non-empty list of layer keys, got {layers!r}")
    for name, v in (("steps", steps), ("k", k), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InputError(f"{name} must be a positive int, got {v!r}")
    where = resolve_shard(shard)
    root = Path(out).expanduser()
    sample = _first_image(data)
    device, dtype = model_device_dtype(model)
    infos = {i.key: i for i in layer_list(model, sample.to(device=device or sample.device, dtype=dtype or sample.dtype))}
    spatial = [key for key, i in infos.items() if i.layout in ("NCHW", "NHWC", "tokens")]
    keys: list[LayerKey] = []
    for layer in layers:
        key = str(LayerKey.parse(layer)) if isinstance(layer, (str, LayerKey)) else repr(layer)
        if key not in spatial:
            raise LayerError(f"layer {key!r} is not a layer of the model with a (C, h, w) output; valid layers are {choices(spatial)}")
        keys.append(LayerKey.parse(key))
    keys = list(dict.fromkeys(keys))
    chans = {str(key): _check_channels(channels, str(key), infos[str(key)].channels) for key in keys}
    index_dir = Path(index).expanduser() if index is not None else root / "index"
    problem = all_gather_objects(_out_problem(root, index_dir) if where.rank == 0 else "", where)[0]
    if problem:  # every rank raises (none is left waiting for the others)
        raise InputError(problem)
    root.mkdir(parents=True, exist_ok=True)
    io = describe_model(model)

    t0 = time.perf_counter()
    if index is not None and (index_dir / "manifest.json").is_file() and not restart:
        idx = _load_existing(index_dir, model, keys, data)
    else:
        idx = mine(model, data, keys, index_dir, k=k, batch_size=batch_size, limit=limit, method=method,
                   preprocessing=preprocessing_identity(io.transform, io.mean, io.std), mean=io.mean, std=io.std,
                   shard=where, restart=restart, progress=progress)
    t1 = time.perf_counter()
    hists = activation_histograms(model, data, keys, where, batch_size=batch_size, limit=limit)
    t2 = time.perf_counter()
    fv_values, side = _featviz(model, keys, chans, root, where, steps=steps, size=size, param=param, seed=seed, transforms=transforms)
    t3 = time.perf_counter()
    manifest: dict[str, Any] = {}
    if where.rank == 0:
        manifest = _write_site(root, idx, index_dir, keys, chans, infos, hists, fv_values, model, data, io, spec=spec,
                               data_name=data_name, title=title or f"Atlas of {spec}", steps=steps, side=side, param=param, seed=seed,
                               transforms=transforms, times=(t_start, t0, t1, t2, t3), world=where.world)
    barrier(where)
    manifest = all_gather_objects(manifest, where)[0]
    return Atlas(root, manifest, site_size(root))


def _write_site(
    root: Path, idx: MiningIndex, index_dir: Path, keys: Sequence[LayerKey], chans: dict[str, list[int]], infos: dict[str, Any],
    hists: dict[str, Any], fv_values: dict[str, list[float]], model: nn.Module, data: Any, io: Any, *, spec: str,
    data_name: str | None, title: str,
    steps: int, side: int, param: str, seed: int, transforms: bool, times: tuple[float, ...], world: int,
) -> dict[str, Any]:
    """Rank 0: the patches (copied when the index is outside the site), the pages and, last, ``atlas.json``."""
    t_start, t0, t1, t2, t3 = times
    inside = _rel(index_dir, root)
    layers: dict[str, Any] = {}
    for key in keys:
        k_str, d = str(key), layer_file(key)
        h = hists[k_str]
        filters = []
        for i, c in enumerate(chans[k_str]):
            recs = idx.top(k_str, c)
            pair = []
            for part in ("img", "proj"):
                rels = []
                for j in range(len(recs)):
                    name = f"patches/{d}/c{c:04d}_{j}_{part}.png"
                    if inside is not None:
                        rels.append(f"{inside}/{name}")
                    else:
                        (root / "patches" / d).mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(idx.root / name, root / name)
                        rels.append(name)
                pair.append(rels)
            filters.append({
                "index": c, "page": pages.filter_path({"dir": d}, c), "top": pair[0], "projections": pair[1],
                "visualization": f"img/{d}/fv_c{c:04d}.png", "values": [round(r.value, 6) for r in recs],
                "images": [idx.image_name(r.image) for r in recs], "visualization_value": round(fv_values[k_str][i], 6),
                "active": round(float(h.active[c]), 6), "median": round(float(h.median[c]), 6),
                "histogram": {"edges": [round(float(v), 6) for v in h.edges[c]], "counts": [int(v) for v in h.counts[c]]},
            })
        info = infos[k_str]
        layers[k_str] = {"dir": d, "channels": int(info.channels), "shape": "x".join(str(s) for s in info.shape),
                         "page": pages.layer_path({"dir": d}), "filters": filters}
    base = data.dataset if isinstance(data, torch.utils.data.DataLoader) else data
    ident = getattr(base, "identity", None)
    ident = ident if isinstance(ident, str) else f"{type(base).__module__}.{type(base).__qualname__}"
    folder = getattr(base, "root", None)
    name = data_name or (str(folder) if isinstance(folder, Path) else ident)
    shape = tuple(int(s) for s in _first_image(data).shape[1:])
    norm = f", normalised with mean {list(io.mean)} and std {list(io.std)}" if io.mean is not None and io.std is not None else ""
    ident_model = model_identity(model)
    first = next(iter(hists.values()))
    manifest: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "title": title,
        "model": {"spec": spec, "class": ident_model["class"], "sha256": ident_model["sha256"],
                  "parameters": int(sum(p.numel() for p in model.parameters())), "input": "x".join(map(str, shape)) + norm},
        "data": {"name": name, "identity": ident, "images": first.images},
        "k": idx.k, "method": str(idx.manifest.get("method", "deconvnet")),
        "featviz": {"steps": steps, "size": side, "param": param, "seed": seed, "transforms": transforms},
        "index": inside, "layers": layers,
    }
    t4 = time.perf_counter()
    for top in ("layers", "img"):  # pages and pictures of layers an earlier build of this site showed
        for old in sorted((root / top).glob("*")) if (root / top).is_dir() else []:
            if old.is_dir() and old.name not in {v["dir"] for v in layers.values()}:
                shutil.rmtree(old)
    for k_str in layers:
        (root / "layers" / layers[k_str]["dir"]).mkdir(parents=True, exist_ok=True)
        write_atomic(root / layers[k_str]["page"], pages.layer_page(manifest, k_str))
        for pos in range(len(layers[k_str]["filters"])):
            write_atomic(root / layers[k_str]["filters"][pos]["page"], pages.filter_page(manifest, k_str, pos))
    t5 = time.perf_counter()
    timing = {"mine_s": round(t1 - t0, 3), "histogram_s": round(t2 - t1, 3), "featviz_s": round(t3 - t2, 3),
              "pages_s": round(t5 - t4, 3), "total_s": round(t5 - t_start, 3), "world": world}
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    line = (f"Built {stamp} in {timing['total_s']:.1f} s on {world} process(es): mining {timing['mine_s']:.1f} s, histograms "
            f"{timing['histogram_s']:.1f} s, feature visualization {timing['featviz_s']:.1f} s, pages {timing['pages_s']:.1f} s.")
    write_atomic(root / "index.html", pages.index_page(manifest, line))
    manifest["timing"] = timing
    write_json(root / "atlas.json", manifest)
    return manifest
