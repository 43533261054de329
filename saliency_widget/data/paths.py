"""Paths read from files (part files, manifests, indexes) that must stay inside their folder.

A batch report's part file or an index's manifest names other files by a path relative to
its folder. Such a file may come from someone else (a shared folder, a downloaded index), so
a path in it is untrusted: :func:`contained` is the one check every reader uses before it
opens, reads or publishes the file a path names.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

from ..errors import InputError

__all__ = ["contained"]


def contained(root: str | Path, rel: object, what: str = "path") -> Path:
    r"""The file ``root / rel``, refused unless it stays inside ``root``.

    Parameters
    ----------
    root
        The folder the path is relative to (an output folder, an index folder).
    rel
        The untrusted relative path, with ``/`` separators (as written in a JSON file).
    what
        What the path is, for the message (e.g. ``"part rank-0-of-1.json: grid"``).

    Returns
    -------
    Path
        ``root / rel`` (not resolved: the caller opens it; it may not exist yet).

    Raises
    ------
    InputError
        ``rel`` is not a non-empty string, is absolute (``/x``, ``C:\x``, ``\\host``), has a
        ``..`` part, a backslash or a NUL, or resolves (through symlinks) outside ``root``.
    """
    if not isinstance(rel, str) or not rel.strip():
        raise InputError(f"{what} {rel!r} is not a relative file path; expected a non-empty string inside {str(root)!r}")
    posix, windows = PurePosixPath(rel), PureWindowsPath(rel)
    if "\0" in rel or "\\" in rel or posix.is_absolute() or windows.drive or windows.root or ".." in posix.parts:
        raise InputError(f"{what} {rel!r} points outside its folder {str(root)!r}; expected a relative path without '..', '\\' or a leading '/'")
    base = Path(root)
    path = base / rel
    real_base = base.resolve()
    try:  # symlinks (of the file or a folder on its way) must not lead out either
        inside = path.resolve().is_relative_to(real_base)
    except (OSError, RuntimeError):  # a symlink loop
        inside = False
    if not inside:
        raise InputError(f"{what} {rel!r} resolves outside its folder {str(root)!r} (through a symlink); refusing to read it")
    return path
