"""Each exported filter's feature visualization in an interactive report (opt-in ``featviz=``).

For every exported layer, one :func:`saliency_widget.visualize` call optimises all its
exported filters as one batch (``channel(layer, c)``, the same objective and result the atlas
stores); each image is packed as a PNG (uint8 bytes) in the page's payload and referred to from
the layer's manifest entry (``"featviz": [ref per channel]``), so the viewer shows "what
excites filter c" next to the filter's projection. Images share one visualization per
``(layer, filter)`` however many images of the report export that filter.

:func:`write_index_visualizations` does the same for a mined top-k index (``mine --featviz``):
one PNG per mined filter under ``INDEX_DIR/featviz/``, read back with
:meth:`saliency_widget.analysis.MiningIndex.featviz_png`.

Pure code: no Jupyter import.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ..analysis.index import FEATVIZ_DIR, layer_file
from ..data.atomic import write_atomic
from ..errors import InputError, SaliencyError, choices
from ..featviz import objectives as obj
from .bundle import Packer
from .featviz_page import to_pil
from .visualize import visualize

__all__ = ["FEATVIZ_COST", "FeatvizOptions", "add_visualizations", "write_index_visualizations"]

#: What the defaults cost, measured on the bundled model (all 64 filters of ``features.relu5`` in one
#: call, a 2-core CPU, idle and shared with other jobs): said in the help texts.
FEATVIZ_COST = ("about 4 s per 64-filter layer on an idle 2-core CPU at the defaults (32 steps, 64 px; 35 s under heavy load) "
                "and ~9 kB of PNG per filter")


@dataclass(frozen=True)
class FeatvizOptions:
    """Settings of the visualizations an interactive report carries (modest, so an export stays quick).

    Attributes
    ----------
    steps
        Optimisation steps (:func:`saliency_widget.visualize`).
    size
        Image side in pixels.
    param
        Parametrisation: ``"fourier"``, ``"pixel"`` or ``"maco"``.
    seed
        Seed: the same settings give the same images.
    transforms
        Transformation robustness (``"standard"``) or None.
    """

    steps: int = 32
    size: int = 64
    param: str = "fourier"
    seed: int = 0
    transforms: str | None = "standard"

    @classmethod
    def of(cls, value: bool | Mapping[str, Any] | FeatvizOptions | None) -> FeatvizOptions | None:
        """``featviz=`` as given: False/None -> None (off), True -> the defaults, a mapping -> those fields."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, FeatvizOptions):
            return value
        if isinstance(value, Mapping):
            names = [f.name for f in fields(cls)]
            bad = [k for k in value if k not in names]
            if bad:
                raise InputError(f"unknown featviz option(s) {bad}; expected some of {choices(names)}")
            return cls(**dict(value))
        raise InputError(f"featviz={value!r}: expected True, False or a mapping of {choices([f.name for f in fields(cls)])}")

    def as_text(self) -> str:
        """One line for the page's settings table."""
        return f"{self.steps} steps, {self.size} px, {self.param}, seed {self.seed}, transforms {self.transforms or 'none'}"


def _png(vis: Any, i: int) -> bytes:
    buf = io.BytesIO()
    to_pil(vis, i).save(buf, format="PNG")
    return buf.getvalue()


def add_visualizations(
    model: nn.Module,
    entries: Sequence[dict[str, Any]],
    packer: Packer,
    options: FeatvizOptions,
    *,
    weights: Any = None,
    processor: Any = None,
    transform: Any = None,
    preprocess: Any = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, str]:
    """Visualize every exported filter, one batched call per layer, and attach the PNGs to ``entries``.

    Parameters
    ----------
    model
        The network (never modified).
    entries
        The images' manifest entries (:func:`~.interactive.collect_image`); each layer entry
        gets ``"featviz"``: one PNG reference per channel of its ``"channels"`` (uint8 bytes
        in the payload, part ``"featviz"``), or ``"featviz_message"`` when the layer cannot
        be visualized.
    packer
        The page's payload.
    options
        Steps, size, parametrisation, seed, transforms.
    weights, processor, transform, preprocess
        Where the model's preprocessing comes from (as for the report); ``preprocess``
        overrides it (``(N, 3, H, W)`` in [0, 1] -> model input, e.g. the explorer's normalisation).
    progress
        Called with one line per layer.

    Returns
    -------
    dict
        Rows for the page's settings table.
    """
    wanted: dict[str, set[int]] = {}
    for image in entries:
        for layer in image["layers"]:
            wanted.setdefault(str(layer["key"]), set()).update(int(c) for c in layer["channels"])
    refs: dict[tuple[str, int], dict[str, Any]] = {}
    failed: dict[str, str] = {}
    t0 = time.perf_counter()
    for key, chans in wanted.items():
        order = sorted(chans)
        t = time.perf_counter()
        try:
            vis = visualize(model, [obj.channel(key, c) for c in order], steps=options.steps, size=options.size, param=options.param,
                            transforms=options.transforms, seed=options.seed, weights=weights, processor=processor, transform=transform,
                            preprocess=preprocess)
        except (SaliencyError, RuntimeError) as exc:  # e.g. a model that refuses the size: the page keeps the rest
            failed[key] = f"no visualization: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
            if progress is not None:
                progress(f"feature visualization of {key}: {failed[key]}")
            continue
        for i, c in enumerate(order):
            refs[(key, c)] = packer.add(np.frombuffer(_png(vis, i), dtype=np.uint8), "featviz")
        if progress is not None:
            progress(f"feature visualization of {key}: {len(order)} filter(s) in {time.perf_counter() - t:.1f} s")
    for image in entries:
        for layer in image["layers"]:
            key = str(layer["key"])
            if key in failed:
                layer["featviz_message"] = failed[key]
            else:
                layer["featviz"] = [refs[(key, int(c))] for c in layer["channels"]]
    return {"feature visualization": f"{options.as_text()} ({time.perf_counter() - t0:.1f} s)"}


def write_index_visualizations(
    model: nn.Module,
    root: str | Path,
    channels: Mapping[str, Sequence[int]],
    options: FeatvizOptions,
    *,
    preprocess: Any = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Write each mined filter's visualization into a top-k index: one batched call per layer.

    Parameters
    ----------
    model
        The mined network (never modified).
    root
        The index directory; gets ``featviz/<layer>/c<channel>.png`` (``<layer>`` as in
        :func:`~saliency_widget.analysis.index.layer_file`) and ``featviz/featviz.json``
        (``{"settings": {...}, "layers": {key: {"channels": [...], "values": [...]}}}``,
        written last).
    channels
        Layer key -> its mined channels.
    options
        Steps, size, parametrisation, seed, transforms.
    preprocess
        ``(N, 3, H, W)`` in [0, 1] -> model input (default: the model's discovered preprocessing).
    progress
        Called with one line per layer.

    Returns
    -------
    Path
        ``featviz/featviz.json``.
    """
    folder = Path(root) / FEATVIZ_DIR
    layers: dict[str, dict[str, list[Any]]] = {}
    for key, chans in channels.items():
        order = [int(c) for c in chans]
        t = time.perf_counter()
        vis = visualize(model, [obj.channel(key, c) for c in order], steps=options.steps, size=options.size, param=options.param,
                        transforms=options.transforms, seed=options.seed, preprocess=preprocess)
        (folder / layer_file(key)).mkdir(parents=True, exist_ok=True)
        for i, c in enumerate(order):
            write_atomic(folder / layer_file(key) / f"c{c:04d}.png", _png(vis, i))
        layers[str(key)] = {"channels": order, "values": [float(v) for v in vis.values]}
        if progress is not None:
            progress(f"feature visualization of {key}: {len(order)} filter(s) in {time.perf_counter() - t:.1f} s")
    return write_atomic(folder / "featviz.json", json.dumps({"settings": asdict(options), "layers": layers}, indent=1))
