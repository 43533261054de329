"""What each render pass did: a bounded in-memory log, optionally mirrored to a JSON-lines file."""

from __future__ import annotations

import hashlib
import json
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RenderRecord", "RenderLog", "short_sha"]


def short_sha(data: bytes) -> str:
    """First 12 hex digits of the SHA-1 of ``data`` (identifies a PNG in a log)."""
    return hashlib.sha1(data).hexdigest()[:12]


@dataclass
class RenderRecord:
    """One render pass.

    Attributes
    ----------
    seq
        1-based number of the render (equals ``Explorer.computations`` after it).
    state
        The state snapshot the render used.
    ms
        Wall time of the render in milliseconds.
    images
        ``{panel: short sha1 of its PNG}`` for every panel produced.
    nonblank
        ``{panel: whether the PNG has more than one colour}``.
    error
        One-line error text, or None.
    """

    seq: int
    state: dict[str, Any]
    ms: float
    images: dict[str, str] = field(default_factory=dict)
    nonblank: dict[str, bool] = field(default_factory=dict)
    error: str | None = None
    cancelled: bool = False


class RenderLog(deque):  # type: ignore[type-arg]
    """The last ``maxlen`` render records; :meth:`follow` also appends each to a file."""

    def __init__(self, maxlen: int = 200) -> None:
        super().__init__(maxlen=maxlen)
        self.path: Path | None = None

    def append(self, rec: RenderRecord) -> None:  # type: ignore[override]
        """Keep ``rec`` and write it to the followed file, if any."""
        super().append(rec)
        self._write(rec)

    def follow(self, path: str | Path | None) -> None:
        """Append one JSON line per record to ``path`` from now on (None stops); the latest is written at once."""
        self.path = Path(path) if path is not None else None
        if self.path is not None and self:
            self._write(self[-1])

    def _write(self, rec: RenderRecord) -> None:
        if self.path is None:
            return
        try:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(asdict(rec)) + "\n")
        except OSError:  # logging is a diagnostic aid; never break rendering over it
            pass
