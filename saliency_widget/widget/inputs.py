"""The image being explained: its model input, a version per image, and the Explainer of its forward pass."""

from __future__ import annotations

import re
import threading
from typing import Any

import torch
from torch import nn

from ..engine import Explainer
from ..engine.checks import check_device
from ..errors import InputError
from ..views.classes import class_names
from ..viz.images import ModelIO, to_model_input

__all__ = ["InputState"]

# The decoder quotes a file's first bytes ("(15 bytes starting b'\\x89PNG...')"): fine in a script's
# traceback, a raw byte dump in the explorer's one-line feedback.
_BYTES = re.compile(r""" starting b(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")


class InputState:
    """One image at a time, preprocessed for the model, and its recorded forward pass.

    Each :meth:`load` bumps :attr:`version`; :meth:`explainer` runs the forward pass once per
    version, on the thread that first asks (the explorer's worker), and checks the labels
    against the model's class count.

    Parameters
    ----------
    model
        The classifier (never modified).
    io
        Its labels and preprocessing (:func:`saliency_widget.viz.images.describe_model`).
    device
        Device for the engine, or None for the model's.
    """

    def __init__(self, model: nn.Module, io: ModelIO, device: str | torch.device | None = None) -> None:
        self.model = model
        self.io = io
        self.device = check_device(device)  # a bad device string fails here, before any image is read
        self._lock = threading.Lock()  # the kernel thread loads, the worker reads
        self._x: torch.Tensor | None = None
        self.version = 0
        self.source = ""
        self.source_bytes: int | None = None  # size of an uploaded file
        self._ex: Explainer | None = None
        self._ex_version = -1
        self._labels: list[str] = []

    def load(self, image: Any, source: str, nbytes: int | None = None) -> int:
        """Preprocess ``image`` into the next version's ``(C, H, W)`` input; return that version.

        Raises
        ------
        InputError
            The image cannot be decoded or preprocessed; the current image stays.
        """
        x = to_model_input(image, self.io.transform)
        with self._lock:
            self._x = x
            self.version += 1
            self.source, self.source_bytes = source, nbytes
            return self.version

    def load_upload(self, value: Any, max_bytes: int) -> int:
        """Load the file of a ``FileUpload`` value (a list, or in ipywidgets 7 a dict, of one item).

        Raises
        ------
        InputError
            The file is larger than ``max_bytes`` (checked before decoding) or not an image (the
            message names the file, not its bytes; the decoder's error is the cause).
        """
        item = value[0] if isinstance(value, (list, tuple)) else next(iter(value.values()))
        name, content = str(item.get("name", "upload")), item["content"]
        size = max(int(item.get("size") or 0), len(content))
        if size > max_bytes:
            raise InputError(
                f"upload {name!r} is {size / 2**20:.1f} MiB; the limit is {max_bytes / 2**20:.0f} MiB "
                "(Explorer.max_upload_bytes). Downscale the image, or pass it from Python with set_image()"
            )
        try:
            return self.load(content, f"upload {name}", size)
        except InputError as exc:  # named by the file, without the decoder's dump of its first bytes
            raise InputError(f"upload {name!r}: {_BYTES.sub('', str(exc))}") from exc

    def explainer(self, version: int | None = None) -> Explainer:
        """The Explainer of image ``version`` (default: the latest), created on first use.

        Raises
        ------
        InputError
            No image is loaded, or the labels do not match the model's class count.
        """
        with self._lock:
            x, latest = self._x, self.version
        version = latest if version is None else version
        if self._ex is not None and self._ex_version == version:
            return self._ex
        if x is None:
            raise InputError("no image is loaded; pass image=... to explore(), pick a sample or upload a PNG/JPEG")
        ex = Explainer(self.model, x.unsqueeze(0), device=self.device)
        k = ex.num_classes
        if self.io.labels is not None and len(self.io.labels) != k:
            raise InputError(f"got {len(self.io.labels)} labels but the model has {k} classes")
        self._labels = class_names(self.io.labels, k)
        self._ex, self._ex_version = ex, version
        return ex

    @property
    def current(self) -> Explainer | None:
        """The last Explainer made (None before the first forward pass)."""
        return self._ex

    @property
    def labels(self) -> list[str]:
        """Class names in class-index order (known after the first forward pass)."""
        return list(self._labels)
