"""Datasets to mine: an image folder (recursive; ImageFolder layout or flat) and the scene stream.

Both are map-style datasets whose item ``i`` is ``(image (C, H, W), i)`` after the model's
preprocessing, and both say what item ``i`` is (:meth:`describe`: a relative path, or the
scene's seed) and what the whole set is (:attr:`identity`), so an index can name its images
and refuse to be extended with other data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .decode import list_images, to_pil

__all__ = ["ImageFolderData", "SceneStream", "file_fingerprint"]

Transform = Callable[[Image.Image], torch.Tensor]


#: Files up to 3 samples long are hashed whole; longer ones by their first, middle and last sample.
SAMPLE_BYTES = 16384


def file_fingerprint(path: Path) -> str:
    """``size:mtime_ns:sha256`` of a file, the hash over its bytes or, past 48 KiB, three 16 KiB samples.

    Cheap enough to run over a whole dataset at every start, and it changes when a file is
    edited in place with the same size: the mtime moves, and the sampled bytes change with it
    even when the mtime is put back (for a small file, any byte). A file that cannot be read
    gets a fingerprint saying so (never an error here: the image reader names it).
    """
    try:
        st = path.stat()
    except OSError as err:  # gone since it was listed: the reader names it when it gets there
        return f"unreadable:{err.errno}"
    try:
        with open(path, "rb") as f:
            if st.st_size <= 3 * SAMPLE_BYTES:
                raw = f.read()
            else:
                chunks = []
                for at in (0, (st.st_size - SAMPLE_BYTES) // 2, st.st_size - SAMPLE_BYTES):
                    f.seek(at)
                    chunks.append(f.read(SAMPLE_BYTES))
                raw = b"".join(chunks)
    except OSError as err:  # e.g. no permission: a change of that is a change too; the reader names the file
        return f"{st.st_size}:{st.st_mtime_ns}:unreadable:{err.errno}"
    return f"{st.st_size}:{st.st_mtime_ns}:{hashlib.sha256(raw).hexdigest()}"


class ImageFolderData(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Every image file under ``root`` (recursively), in sorted relative-path order.

    Parameters
    ----------
    root
        A folder: ``root/class/xxx.jpg`` (torchvision ImageFolder) or any nesting, or flat.
    transform
        PIL image (RGB) -> ``(C, H, W)`` tensor, the model's preprocessing.

    Notes
    -----
    ``data[i]`` is ``(image, i)``; :attr:`paths` are relative to ``root`` with ``/``.
    """

    def __init__(self, root: str | Path, transform: Transform) -> None:
        self.root = Path(root).expanduser()
        self.paths = [p.relative_to(self.root).as_posix() for p in list_images(root, "--data")]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        # the one decoder: EXIF orientation, 16-bit, decompression-bomb and aspect guards, one-line errors
        return self.transform(to_pil(self.root / self.paths[i])), i

    def describe(self, i: int) -> str:
        """The relative path of item ``i``."""
        return self.paths[i]

    def file_hash(self, i: int) -> str:
        """sha256 of item ``i``'s file bytes."""
        return hashlib.sha256((self.root / self.paths[i]).read_bytes()).hexdigest()

    @property
    def identity(self) -> str:
        """sha256 over every file's relative path, size, mtime and content sample (see :func:`file_fingerprint`).

        Renames, additions, removals and edits in place (even of the same size) change it, so a
        resumed mining run or a merged batch report never mixes the old files with the new ones.
        """
        h = hashlib.sha256()
        for rel in self.paths:
            h.update(f"{rel}\0{file_fingerprint(self.root / rel)}\n".encode())
        return h.hexdigest()


class SceneStream(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """The bundled generated scenes (``sample:shapes``) through the model's preprocessing.

    Parameters
    ----------
    n
        Number of scenes.
    transform
        PIL image -> ``(C, H, W)`` tensor.
    size
        Scene side in pixels (before the transform).
    seed
        Seed of the stream: scene ``i`` depends only on ``(seed, i)``.
    """

    def __init__(self, n: int, transform: Transform, size: int = 128, seed: int = 0) -> None:
        from .shapes import ShapesDataset

        self.scenes = ShapesDataset(n, size=size, seed=seed, transform=lambda a: torch.from_numpy(np.ascontiguousarray(a)))
        self.transform = transform

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        arr = self.scenes[i][0].numpy()
        return self.transform(Image.fromarray(arr)), i

    def describe(self, i: int) -> str:
        """``sample:shapes?seed=S&size=N#i``: how to regenerate scene ``i``."""
        return f"sample:shapes?seed={self.scenes.seed}&size={self.scenes.size}#{i}"

    def file_hash(self, i: int) -> str:
        """sha256 of scene ``i``'s RGB bytes."""
        return hashlib.sha256(self.scenes[i][0].numpy().tobytes()).hexdigest()

    @property
    def identity(self) -> str:
        """The stream's parameters."""
        return f"sample:shapes?seed={self.scenes.seed}&size={self.scenes.size}&n={len(self)}"
