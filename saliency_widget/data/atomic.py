"""The one atomic writer: a file appears whole or not at all (never half-written by a crash or a kill).

Every file the package writes goes through here: reports and grids, batch pages, part files and
the index page, mining checkpoints, index manifests, layer arrays and patches. The bytes go to a
temporary sibling (same folder, so the same file system) named for this process and thread,
which :func:`os.replace` then moves over the target in one step; on any error the temporary
file is removed and the target is left as it was. Readers (a resumed run, a merging rank, a
browser) therefore see the old file or the new one, never a mix.

Floor: ``data`` (imports nothing of the package); pure, no Jupyter.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["replacing", "write_atomic", "write_json"]


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """A temporary path to write; on a clean exit it replaces ``path`` atomically, else it is removed.

    For writers that want a path (``torch.save``, ``numpy.save``)::

        with replacing(out / "state.pt") as tmp:
            torch.save(state, tmp)
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}-{threading.get_ident()}")
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically; return ``path`` as a ``Path``."""
    target = Path(path)
    with replacing(target) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return target


def write_json(path: str | Path, obj: Any, **dump_options: Any) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (``indent=1`` unless ``dump_options`` say otherwise)."""
    dump_options.setdefault("indent", 1)
    return write_atomic(path, json.dumps(obj, **dump_options))
