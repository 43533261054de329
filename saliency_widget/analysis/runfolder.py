"""The folder of one mining run: its lock, its scan checkpoints and the configuration it was started with.

:func:`~saliency_widget.analysis.mining.mine` writes its index into ``out``. While it runs,
``out/.mining.lock`` keeps a second run away (:func:`out_lock`), ``out/.mining/`` holds each
rank's atomic scan checkpoint (:class:`Checkpoints`) and the run's ``config.json``, and
:func:`check_config` refuses to resume or reuse a run of another model, other options or other
data. :func:`check_out` refuses an ``out`` that holds something else.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ..data.atomic import replacing, write_json
from ..errors import InputError, ModelError
from .index import FORMAT
from .shards import Shard, all_gather_objects, barrier

__all__ = ["KILL_ENV", "LOCK_NAME", "Checkpoints", "check_config", "check_out", "out_lock"]

#: Test hook: ``SALIENCY_MINE_KILL_AFTER_CHECKPOINT=N`` makes the process SIGKILL itself right
#: after writing its N-th scan checkpoint (to test that a killed run resumes exactly).
KILL_ENV = "SALIENCY_MINE_KILL_AFTER_CHECKPOINT"

#: The lock file of a run in ``out`` (held with ``flock`` while ``mine`` runs; the OS drops it when the process dies).
LOCK_NAME = ".mining.lock"


@contextlib.contextmanager
def out_lock(out: Path, where: Shard) -> Iterator[None]:
    """Hold ``out/.mining.lock`` (rank 0) while mining: a second run on the same ``out`` is refused in one line.

    ``flock`` is released by the OS when the holder exits, also on SIGKILL, so a killed run's
    rerun resumes at once. Without ``fcntl`` (Windows) there is no lock.
    """
    fd = None
    holder = ""
    if where.rank == 0:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            fcntl = None  # type: ignore[assignment]
        if fcntl is not None:
            fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(fd, 64).decode("ascii", "replace").strip() or "?"
                os.close(fd)
                fd = None
            else:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}@{socket.gethostname()}".encode(), 0)
    busy = [h for h in all_gather_objects(holder, where) if h]
    if busy:
        raise InputError(f"another mining run (process {busy[0]}) is writing to {str(out)!r}; wait for it to finish "
                         "(then rerun to reuse its index), or give another --out")
    try:
        yield
    finally:
        if fd is not None:
            os.ftruncate(fd, 0)  # no holder any more (and two finished indexes have equal files)
            os.close(fd)  # closing releases the flock


class Checkpoints:
    """Atomic per-rank scan checkpoints under ``out/.mining`` (per world size: another process count rescans)."""

    def __init__(self, out: Path, shard: Shard) -> None:
        self.dir = out / ".mining"
        self.shard = shard
        self.path = self.dir / f"rank{shard.rank}of{shard.world}.pt"
        self.merged = self.dir / "merged.pt"
        self.written = 0
        self.kill_after = int(os.environ.get(KILL_ENV, "0") or 0)

    def save(self, path: Path, obj: Any) -> None:
        """Write ``obj`` to ``path`` atomically (a killed write leaves the old file)."""
        with replacing(path) as tmp:
            torch.save(obj, tmp)

    def save_scan(self, obj: Any) -> None:
        """Write this rank's scan state (``next_batch``, ``seconds``, ``layers``) as its checkpoint."""
        self.save(self.path, obj)
        self.written += 1
        if self.kill_after and self.written >= self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)  # the test hook (see KILL_ENV)

    def load(self, path: Path) -> Any:
        """The object saved at ``path``, None when there is none; an unreadable file is an :class:`InputError`."""
        if not path.is_file():
            return None
        try:
            return torch.load(path, weights_only=True)
        except Exception as err:  # a checkpoint that cannot be read is restarted, never trusted
            raise InputError(f"checkpoint {str(path)!r} cannot be read ({err}); rerun with --restart") from err


def _json_dict(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None if it is missing, unreadable or not an object."""
    import json

    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def check_out(out: Path) -> None:
    """Refuse an ``out`` that holds files of something else (they would be overwritten or, with restart, deleted)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} is a file; give a folder for the index (it gets manifest.json, layers/, patches/)")
    man = out / "manifest.json"
    ours = man.is_file() and (_json_dict(man) or {}).get("format") == FORMAT
    if man.exists() and not ours and not (out / ".mining").is_dir():
        raise InputError(f"{str(man)!r} is not a saliency-widget index manifest; refusing to overwrite it: choose a new or empty --out "
                         "(or delete it yourself if it is a broken index)")
    taken = [n for n in ("layers", "patches", "images.json") if (out / n).exists()]
    if taken and not ours and not (out / ".mining").is_dir():
        raise InputError(f"{str(out)!r} holds {', '.join(taken)} of something that is not a saliency-widget index; "
                         "refusing to overwrite (or, with --restart, delete) them: choose a new or empty --out")


def check_config(out: Path, config: dict[str, Any], restart: bool, shard: Shard) -> None:
    """Refuse to mix runs: a different model is a ModelError, other options an InputError.

    Parameters
    ----------
    out
        The index folder.
    config
        This run's identity: ``model``, ``preprocessing``, ``data``, ``layers``, ``k``,
        ``batch_size``, ``limit``, ``method``; recorded in ``.mining/config.json`` for a new run.
    restart
        Delete a previous run or index at ``out`` first (rank 0, between barriers).
    shard
        This process's shard (every rank calls it; rank 0 writes).

    Raises
    ------
    ModelError
        ``out`` holds a run or index of another model.
    InputError
        ``out`` holds a run with other options or of other data, or a corrupt manifest.
    """
    cfg_path = out / ".mining" / "config.json"
    man_path = out / "manifest.json"
    if restart:
        barrier(shard)
        if shard.rank == 0:
            for p in (out / ".mining", out / "layers", out / "patches"):
                shutil.rmtree(p, ignore_errors=True)
            for f in (man_path, out / "images.json"):
                f.unlink(missing_ok=True)
        barrier(shard)
    old, stale = None, False
    if man_path.is_file():
        old = (_json_dict(man_path) or {}).get("config")
        if not isinstance(old, dict) or not isinstance(old.get("model"), dict):
            raise InputError(f"corrupt index at {str(out)!r}: manifest.json holds no run configuration; "
                             f"mine it again with --restart (restart=True)")
    elif (out / ".mining").is_dir():
        old = (_json_dict(cfg_path) or {}).get("config")
        if not isinstance(old, dict) or not isinstance(old.get("model"), dict):
            old, stale = None, True  # checkpoints of an unknown run (its config.json lost or cut short): never resumed
    barrier(shard)  # every rank has read the state before rank 0 changes it
    if stale and shard.rank == 0:
        shutil.rmtree(out / ".mining", ignore_errors=True)
    if old is not None and old != config:
        if old.get("model") != config["model"]:
            raise ModelError(
                f"{str(out)!r} holds an index of another model ({old['model'].get('class')}, weights sha256 "
                f"{str(old['model'].get('sha256'))[:12]}); refusing to mix models: use a new --out, or --restart to replace it"
            )
        diff = sorted(k for k in config if old.get(k) != config[k])
        if diff == ["data"]:
            raise InputError(f"the data changed since {str(out)!r} was mined from it (images added, removed, renamed or edited "
                             f"in place); refusing to resume or reuse it: pass --restart (restart=True) to mine the new data")
        raise InputError(f"{str(out)!r} holds a run with other options ({', '.join(diff)}); rerun the same command, or pass --restart")
    barrier(shard)
    if shard.rank == 0:
        (out / ".mining").mkdir(parents=True, exist_ok=True)
        if old is None:
            write_json(cfg_path, {"config": config})
    barrier(shard)
