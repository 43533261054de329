"""Which images the analyses scan (top-9 per filter): one function decides, and says so.

:func:`choose_data` is the single place that turns the user's choice (``explore(data=...)``,
a folder typed in the panel, the bundled shape scenes) into batches and a sentence the panel
shows ("top-9 scans: ..."). A model other than the bundled one never falls back to the
synthetic shapes silently: without data it gets no data and a message saying how to give some.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from ..errors import InputError

__all__ = ["BUNDLED", "FOLDER", "GIVEN", "DataChoice", "choose_data", "data_options"]

BUNDLED, GIVEN, FOLDER = "bundled", "given", "folder"
_BATCH = 32


@dataclass
class DataChoice:
    """Batches to scan and the sentence that names them.

    Attributes
    ----------
    kind
        ``"bundled"``, ``"given"`` (``explore(data=...)``), ``"folder"`` or ``"none"``.
    description
        What the panel shows after "top-9 scans:".
    batches
        Called for a fresh iterable of ``(B, C, H, W)`` batches or ``(images, ...)`` tuples;
        None when there is no data.
    size
        Number of images when known (for the progress bar), else None.
    """

    kind: str
    description: str
    batches: Callable[[], Iterable[Any]] | None
    size: int | None = None


def is_bundled(model: nn.Module) -> bool:
    """True for the bundled shapes model (the only one the synthetic scenes fit)."""
    from ..models import ShapesCNN

    return isinstance(model, ShapesCNN)


def data_options(model: nn.Module, given: Any) -> list[tuple[str, str]]:
    """The panel's data menu as ``(label, key)``: given data first, then the bundled scenes, then a folder."""
    opts = []
    if given is not None:
        opts.append(("data passed to explore()", GIVEN))
    opts.append(("bundled shape scenes" if is_bundled(model) else "bundled shape scenes (synthetic, made for the bundled model)", BUNDLED))
    opts.append(("a folder of images", FOLDER))
    return opts


def _folder(path: str | Path, transform: Callable[[Image.Image], torch.Tensor]) -> DataChoice:
    from ..data.decode import list_images, to_model_input

    p = Path(path).expanduser()
    files = list_images(path, "data folder")

    def batches() -> Iterator[torch.Tensor]:
        for s in range(0, len(files), _BATCH):
            yield torch.stack([to_model_input(str(f), transform) for f in files[s : s + _BATCH]])

    return DataChoice(FOLDER, f"folder {str(p)!r} ({len(files)} images)", batches, len(files))


def _given(data: Any, transform: Callable[[Image.Image], torch.Tensor]) -> DataChoice:
    from torch.utils.data import DataLoader, Dataset

    if isinstance(data, (str, Path)):
        return _folder(data, transform)
    if isinstance(data, DataLoader):
        n = len(data.dataset) if hasattr(data.dataset, "__len__") else None  # type: ignore[arg-type]
        return DataChoice(GIVEN, f"the DataLoader passed to explore() ({n if n is not None else '?'} images)", lambda: data, n)
    if isinstance(data, Dataset) and hasattr(data, "__len__"):
        n = len(data)
        return DataChoice(
            GIVEN, f"the {type(data).__name__} passed to explore() ({n} images)",
            lambda: DataLoader(data, batch_size=_BATCH, shuffle=False), n,
        )
    if isinstance(data, torch.Tensor) and data.dim() == 4:
        return DataChoice(
            GIVEN, f"the tensor passed to explore() ({data.shape[0]} images)",
            lambda: (data[s : s + _BATCH] for s in range(0, data.shape[0], _BATCH)), int(data.shape[0]),
        )
    raise InputError(
        f"data must be a folder path, a torch Dataset, a DataLoader or an (N, C, H, W) tensor, got {type(data).__name__}"
    )


def choose_data(
    model: nn.Module,
    choice: str | None = None,
    *,
    given: Any = None,
    folder: str = "",
    transform: Callable[[Image.Image], torch.Tensor] | None = None,
    bundled_size: int = 256,
) -> DataChoice:
    """The data the analyses scan, from the user's choice.

    Parameters
    ----------
    model
        The explored model.
    choice
        ``"given"``, ``"bundled"``, ``"folder"``, or None for the default: the given data,
        else the bundled scenes for the bundled model, else no data.
    given
        What ``explore(data=...)`` received: a folder path, a ``Dataset``, a ``DataLoader``
        or an ``(N, C, H, W)`` tensor (preprocessed for the model).
    folder
        The folder typed in the panel (for ``choice="folder"``).
    transform
        PIL image -> ``(C, H, W)``, the model's preprocessing (for folders).
    bundled_size
        Number of bundled scenes.

    Raises
    ------
    InputError
        An unknown choice, a folder that does not exist or holds no image, data of an
        unsupported type.
    """
    if transform is None:
        from ..viz.images import describe_model

        transform = describe_model(model).transform
    if choice is None:
        choice = GIVEN if given is not None else (BUNDLED if is_bundled(model) else "none")
    if choice == "none":
        return DataChoice(
            "none",
            "no data chosen: this model is not the bundled one, so the synthetic shape scenes are not used by "
            "default; pass explore(model, data=folder | Dataset | DataLoader), type a folder below, or choose "
            "the bundled scenes",
            None,
        )
    if choice == GIVEN:
        if given is None:
            raise InputError("no data was passed to explore(); pass explore(model, data=...) or choose another source")
        return _given(given, transform)
    if choice == BUNDLED:
        from ..data import ShapesDataset

        ds = ShapesDataset(bundled_size, seed=2024)
        from torch.utils.data import DataLoader

        note = "" if is_bundled(model) else "; synthetic, made for the bundled model"
        return DataChoice(BUNDLED, f"bundled shape scenes ({bundled_size} images, seed 2024{note})",
                          lambda: DataLoader(ds, batch_size=64, shuffle=False), bundled_size)
    if choice == FOLDER:
        if not folder.strip():
            raise InputError("type the path of a folder of images in the 'folder' box")
        return _folder(folder.strip(), transform)
    raise InputError(f"data choice must be one of 'given', 'bundled', 'folder' or None, got {choice!r}")
