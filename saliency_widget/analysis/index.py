"""The top-k index on disk: a versioned, documented format, written once and read by the widget.

Layout of ``INDEX_DIR`` (format ``saliency-widget-topk-index``, version 1)::

    manifest.json            format, version, k, method, model + preprocessing identity, data identity,
                             and per layer: its file, channel count and the file's sha256
    images.json              {"ids": [...], "names": [...], "sha256": [...]}: every winning image
    layers/<layer>.npz       channels (C,) int64, values (C, k) float32, image (C, k) int64,
                             pos (C, k, 2) int64 (y, x in the feature map), boxes (C, k, 4) int64
                             (receptive field y0, x0, y1, x1 in input pixels)
    patches/<layer>/c<channel>_<j>_img.png, ..._proj.png   the receptive-field patch of winner j
                             and its projection (signed, coolwarm), at input resolution
    featviz/featviz.json     optional (``mine --featviz``): {"settings": {steps, size, param, seed,
                             transforms}, "layers": {key: {"channels", "values"}}}
    featviz/<layer>/c<channel>.png   that filter's feature visualization (``saliency_widget.visualize``)

``<layer>`` is the layer key (``"name"`` or ``"name#call"``) with ``#`` written ``@``.
``manifest.json`` is written last (atomically), so a directory without it is not an index.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import struct
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from ..data.paths import contained
from ..engine.keys import LayerKey
from ..errors import InputError, ModelError, SaliencyError, choices

__all__ = [
    "FEATVIZ_DIR",
    "FORMAT",
    "VERSION",
    "MiningIndex",
    "TopRecord",
    "layer_file",
    "load_index",
    "model_identity",
    "preprocessing_identity",
]

FORMAT = "saliency-widget-topk-index"
#: Folder of an index's optional feature visualizations (one PNG per mined filter).
FEATVIZ_DIR = "featviz"
VERSION = 1
_PNG = b"\x89PNG\r\n\x1a\n"
_ARRAYS = {"channels": 1, "values": 2, "image": 2, "pos": 3, "boxes": 3}


class TopRecord(NamedTuple):
    """One winner: the image id (its index in the mined data), the position and the activation."""

    image: int
    y: int
    x: int
    value: float


def layer_file(key: LayerKey | str) -> str:
    """File stem of a layer key (``#`` is not safe in every file system and URL)."""
    return str(LayerKey.parse(key)).replace("#", "@")


def model_identity(model: nn.Module) -> dict[str, str]:
    """The model's class and a sha256 over its parameter and buffer names, shapes, dtypes and bytes."""
    h = hashlib.sha256()
    for name, t in list(model.state_dict().items()):
        if not isinstance(t, torch.Tensor):
            continue
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}\n".encode())
        h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    cls = type(model)
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "sha256": h.hexdigest()}


def preprocessing_identity(transform: Any, mean: Any, std: Any) -> dict[str, Any]:
    """What the images went through: the transform's repr (addresses removed) and its normalisation."""
    text = re.sub(r" at 0x[0-9a-fA-F]+", "", repr(transform))
    return {"transform": text, "mean": list(mean) if mean is not None else None, "std": list(std) if std is not None else None}


def _corrupt(root: Path, what: str) -> InputError:
    return InputError(f"corrupt index at {str(root)!r}: {what}; mine it again (saliency-widget mine ... --out {str(root)!r} --restart)")


class MiningIndex:
    """A loaded index (see the module docstring); build it with :func:`load_index`.

    Attributes
    ----------
    root
        The index directory.
    manifest
        The parsed ``manifest.json``.
    k
        Winners per channel.
    """

    def __init__(self, root: Path, manifest: dict[str, Any], images: dict[str, list[Any]], arrays: dict[str, dict[str, np.ndarray]]) -> None:
        self.root = root
        self.manifest = manifest
        self.k = int(manifest["k"])
        self._images = {int(i): (str(n), str(s)) for i, n, s in zip(images["ids"], images["names"], images["sha256"])}
        self._arrays = arrays
        self._rows = {layer: {int(c): r for r, c in enumerate(a["channels"].tolist())} for layer, a in arrays.items()}

    @property
    def layers(self) -> list[str]:
        """The layer keys held, in mining order."""
        return list(self._arrays)

    def channels(self, layer: str | LayerKey) -> list[int]:
        """The channels held for ``layer``."""
        return list(self._rows[self._layer(layer)])

    def _layer(self, layer: str | LayerKey) -> str:
        key = str(LayerKey.parse(layer))
        if key not in self._arrays:
            raise InputError(f"layer {key!r} is not in the index at {str(self.root)!r}; it holds {choices(self.layers)}")
        return key

    def _row(self, layer: str | LayerKey, channel: int) -> tuple[str, int]:
        key = self._layer(layer)
        rows = self._rows[key]
        if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) or int(channel) not in rows:
            raise InputError(f"channel {channel!r} of layer {key!r} is not in the index; it holds channels 0..{len(rows) - 1}")
        return key, rows[int(channel)]

    def top(self, layer: str | LayerKey, channel: int) -> list[TopRecord]:
        """The ``k`` winners of one channel, strongest first (ties: smaller image id first)."""
        key, r = self._row(layer, channel)
        a = self._arrays[key]
        return [
            TopRecord(int(i), int(p[0]), int(p[1]), float(v))
            for i, p, v in zip(a["image"][r].tolist(), a["pos"][r].tolist(), a["values"][r].tolist())
        ]

    def boxes(self, layer: str | LayerKey, channel: int) -> list[tuple[int, int, int, int]]:
        """Receptive-field boxes ``(y0, x0, y1, x1)`` of the winners, in :meth:`top` order."""
        key, r = self._row(layer, channel)
        return [tuple(b) for b in self._arrays[key]["boxes"][r].tolist()]  # type: ignore[misc]

    def image_name(self, image: int) -> str:
        """Where image ``image`` came from (a path relative to the data folder, or a scene's recipe)."""
        return self._images[int(image)][0]

    def image_hash(self, image: int) -> str:
        """sha256 of the image's file bytes (or of a generated scene's pixels)."""
        return self._images[int(image)][1]

    def patch_pngs(self, layer: str | LayerKey, channel: int) -> list[tuple[bytes, bytes]]:
        """``[(image patch PNG, projection PNG), ...]`` of the winners, strongest first."""
        key, r = self._row(layer, channel)
        out = []
        for j in range(len(self._arrays[key]["image"][r])):
            pair = []
            for part in ("img", "proj"):
                rel = f"patches/{layer_file(key)}/c{int(self._arrays[key]['channels'][r]):04d}_{j}_{part}.png"
                f = contained(self.root, rel, "patch")  # a shared index must not make the widget read (and show) other files
                if not f.is_file():
                    raise _corrupt(self.root, f"patch {f.relative_to(self.root).as_posix()!r} is missing")
                raw = f.read_bytes()
                y0, x0, y1, x1 = (int(v) for v in self._arrays[key]["boxes"][r, j])
                # its PNG header must say the size of its receptive-field box: a swapped file or a
                # decompression bomb in a shared index is refused before anything decodes it
                if len(raw) < 24 or raw[:8] != _PNG or raw[12:16] != b"IHDR" or struct.unpack(">II", raw[16:24]) != (x1 - x0, y1 - y0):
                    raise _corrupt(self.root, f"patch {rel!r} is not the {x1 - x0}x{y1 - y0} PNG of its receptive field")
                pair.append(raw)
            out.append((pair[0], pair[1]))
        return out

    def featviz_png(self, layer: str | LayerKey, channel: int) -> bytes | None:
        """The filter's feature visualization (a PNG written by ``mine --featviz``), or None if the index has none."""
        key, r = self._row(layer, channel)
        f = contained(self.root, f"{FEATVIZ_DIR}/{layer_file(key)}/c{int(self._arrays[key]['channels'][r]):04d}.png", "feature visualization")
        if not f.is_file():
            return None
        raw = f.read_bytes()
        if raw[:8] != _PNG:
            raise _corrupt(self.root, f"{f.relative_to(self.root).as_posix()!r} is not a PNG")
        return raw

    def grid_png(self, layer: str | LayerKey, channel: int, cell: int = 64) -> bytes:
        """Zeiler-Fergus figure 2 for one channel from the stored patches: projections (left), image patches (right)."""
        import math

        from ..viz import render as R

        pairs = self.patch_pngs(layer, channel)
        cols = max(1, math.ceil(math.sqrt(len(pairs))))
        left = R.tile([R.from_png(p) for _i, p in pairs], cols, cell)
        right = R.tile([R.from_png(i) for i, _p in pairs], cols, cell)
        titles = [f"{self._layer(layer)} #{channel}: projections ({self.manifest.get('method', 'deconvnet')})", "image patches"]
        return R.to_png(R.compose([left, right], titles, height=left.shape[0]))

    def check_model(self, model: nn.Module) -> None:
        """Raise :class:`~saliency_widget.errors.ModelError` unless ``model`` is the one the index was mined with."""
        want, got = self.manifest["model"], model_identity(model)
        if want != got:
            raise ModelError(
                f"the index at {str(self.root)!r} was mined with model {want['class']} (weights sha256 {want['sha256'][:12]}), "
                f"not with this {got['class']} (weights sha256 {got['sha256'][:12]}); mine this model into a new index"
            )


def _read_json(root: Path, name: str) -> Any:
    path = root / name
    if not path.is_file():
        if name == "manifest.json":
            raise InputError(f"{str(root)!r} is not a top-k index (no manifest.json); create one with saliency-widget mine ... --out {str(root)!r}")
        raise _corrupt(root, f"{name} is missing")
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise _corrupt(root, f"{name} is not valid JSON ({err})") from err


def load_index(root: str | Path, model: nn.Module | None = None) -> MiningIndex:
    """Open and validate an index written by ``saliency-widget mine`` / :func:`~saliency_widget.analysis.mining.mine`.

    Parameters
    ----------
    root
        The index directory.
    model
        When given, the index must have been mined with exactly this model (same class and weights).

    Returns
    -------
    MiningIndex
        ``.top(layer, channel)``, ``.layers``, ``.channels(layer)``, ``.patch_pngs``, ``.grid_png``.

    Raises
    ------
    InputError
        Not an index, another format or version, a missing or altered file, inconsistent arrays.
    ModelError
        ``model`` is not the model the index was mined with.
    """
    path = Path(root).expanduser()
    if not path.is_dir():
        what = "is a file, not an index directory" if path.exists() else "does not exist"
        raise InputError(f"index directory {str(root)!r} {what}")
    man = _read_json(path, "manifest.json")
    if not isinstance(man, dict) or man.get("format") != FORMAT:
        raise _corrupt(path, f"manifest.json is not a {FORMAT} manifest")
    if man.get("version") != VERSION:
        raise InputError(f"the index at {str(path)!r} has format version {man.get('version')!r}; this saliency-widget reads version {VERSION}")
    images = _read_json(path, "images.json")
    if not isinstance(images, dict) or not all(isinstance(images.get(f), list) for f in ("ids", "names", "sha256")):
        raise _corrupt(path, "images.json lacks the lists ids, names, sha256")
    ids, names, hashes = images["ids"], images["names"], images["sha256"]
    if not len(ids) == len(names) == len(hashes) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids) \
            or len(set(ids)) != len(ids) or not all(isinstance(v, str) for v in names + hashes):
        raise _corrupt(path, f"images.json must hold as many unique int ids ({len(ids)}) as str names ({len(names)}) and sha256 ({len(hashes)})")
    k = man.get("k")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1 or not isinstance(man.get("layers"), dict) or not man["layers"]:
        raise _corrupt(path, f"manifest.json needs an int k >= 1 (has {k!r}) and a non-empty object of layers")
    known = set(ids)
    arrays: dict[str, dict[str, np.ndarray]] = {}
    for key, meta in man["layers"].items():
        if not isinstance(meta, dict) or not isinstance(meta.get("sha256"), str) or isinstance(meta.get("channels"), bool) \
                or not isinstance(meta.get("channels"), int):
            raise _corrupt(path, f"manifest.json: layer {key!r} needs a file, an int channel count and a sha256")
        try:
            LayerKey.parse(key)
            contained(path / "patches", layer_file(key), f"manifest.json: layer {key!r}")  # its patches' folder
        except SaliencyError as err:
            raise _corrupt(path, f"manifest.json: {err}") from err
        f = contained(path, meta.get("file"), f"manifest.json: layer {key!r} file")
        if not f.is_file():
            raise _corrupt(path, f"{meta['file']} is missing")
        raw = f.read_bytes()
        if hashlib.sha256(raw).hexdigest() != meta["sha256"]:
            raise _corrupt(path, f"{meta['file']} does not match its checksum in manifest.json")
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as z:
                a = {name: z[name] for name in _ARRAYS}
        except (ValueError, KeyError, OSError, EOFError) as err:
            raise _corrupt(path, f"{meta['file']} cannot be read ({err})") from err
        C = len(a["channels"])
        shapes_ok = all(a[n].ndim == d and a[n].shape[0] == C for n, d in _ARRAYS.items())
        if not shapes_ok or a["values"].shape != a["image"].shape or C != meta["channels"]:
            raise _corrupt(path, f"{meta['file']} holds arrays of inconsistent shapes")
        lost = sorted(set(np.unique(a["image"]).tolist()) - known)
        if lost:
            raise _corrupt(path, f"images.json lacks the winning image(s) {lost[:10]} of layer {key!r}")
        arrays[key] = a
    index = MiningIndex(path, man, images, arrays)
    if model is not None:
        index.check_model(model)
    return index
