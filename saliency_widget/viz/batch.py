"""Batch reports over a folder: the per-rank part files and the merged ``index.html`` (pure viz).

A batch report is a folder::

    OUT_DIR/index.html                    every image once, in dataset order: its maps, a link to its page
    OUT_DIR/pages/<relative path>.html    one self-contained report per image (render_report)
    OUT_DIR/pages/<relative path>.png     that image's PNG grid row (input + one panel per method)
    OUT_DIR/parts/rank-K-of-W.json        what rank K of W rendered, and which images it could not read (atomic)

Each process writes its pages and its part file; :func:`merge_parts` reads the parts of one
run and writes the index. The index embeds every PNG row as a data URI (no scripts, no
stylesheets to fetch), so it opens offline and does not depend on how many processes made it.
Images that could not be read are listed at the top of the index, with the reason; every other
image is still rendered (:func:`unreadable` gives the list to the command, which exits non-zero).
Paths read from a part stay inside ``OUT_DIR`` (:func:`~saliency_widget.data.paths.contained`).
"""

from __future__ import annotations

import base64
import html
import itertools
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..data.atomic import write_atomic, write_json
from ..data.paths import contained
from ..errors import InputError
from .htmlparts import html_document

__all__ = ["PART_VERSION", "index_html", "merge_parts", "part_path", "read_parts", "unreadable", "write_part"]

#: Version of the part file format.
PART_VERSION = 1

_PART = re.compile(r"^rank-(\d+)-of-(\d+)\.json$")


def part_path(out_dir: str | Path, rank: int, world: int) -> Path:
    """``OUT_DIR/parts/rank-K-of-W.json``."""
    return Path(out_dir) / "parts" / f"rank-{rank}-of-{world}.json"


def write_part(out_dir: str | Path, part: Mapping[str, Any]) -> Path:
    """Write one rank's part file atomically (a temporary file renamed into place).

    Parameters
    ----------
    out_dir
        The batch report folder.
    part
        ``{"version", "rank", "world", "n", "identity", "settings", "images": [{"index", "path", "page", "grid"}],
        "failed": [{"index", "path", "error"}], "seconds"}``; ``images`` are the images this rank rendered,
        ``failed`` (optional) those it could not read, ``n`` the size of the whole folder.
    """
    p = part_path(out_dir, int(part["rank"]), int(part["world"]))
    p.parent.mkdir(parents=True, exist_ok=True)
    return write_json(p, dict(part), sort_keys=True)


def read_parts(out_dir: str | Path, world: int | None = None) -> list[dict[str, Any]]:
    """The part files of one run, in rank order, checked to cover every image exactly once.

    Parameters
    ----------
    out_dir
        The batch report folder.
    world
        Number of processes of the run to merge; None: the only one present.

    Raises
    ------
    InputError
        No parts, parts of several runs (give ``world``), a rank missing, parts of different
        folders or settings, or an image missing or rendered twice.
    """
    if world is not None and (isinstance(world, bool) or not isinstance(world, int) or world < 1):
        raise InputError(f"world must be None (the only run present) or a positive int (the run's process count), got {world!r}")
    folder = Path(out_dir) / "parts"
    found: dict[int, dict[int, Path]] = {}
    for f in sorted(folder.glob("rank-*-of-*.json")) if folder.is_dir() else []:
        m = _PART.match(f.name)
        if m:
            found.setdefault(int(m.group(2)), {})[int(m.group(1))] = f
    if not found:
        raise InputError(f"no part files (parts/rank-K-of-W.json) in {str(out_dir)!r}; render the folder first")
    if world is None:
        if len(found) > 1:
            raise InputError(f"{str(folder)!r} holds parts of runs on {sorted(found)} processes; pass world= one of them")
        world = next(iter(found))
    ranks = found.get(world, {})
    missing = _first_missing(ranks, world)
    if missing:
        raise InputError(f"part files of rank(s) {missing} of {world} are missing in {str(folder)!r}; expected rank-0-of-{world}.json .. rank-{world - 1}-of-{world}.json")
    parts = [_load_part(Path(out_dir), ranks[r], r, world) for r in range(world)]
    first = parts[0]
    for key in ("version", "n", "identity", "settings"):
        odd = [p["rank"] for p in parts if p.get(key) != first.get(key)]
        if odd:
            raise InputError(f"part(s) of rank {odd} differ from rank 0 in {key!r}; rerender the folder into an empty OUT_DIR")
    if first.get("version") != PART_VERSION:
        raise InputError(f"part files have version {first.get('version')!r}; this saliency-widget reads version {PART_VERSION}")
    seen = sorted(int(e["index"]) for p in parts for e in [*p["images"], *p.get("failed", [])])
    n = int(first["n"])
    if len(seen) != n or seen != list(range(n)):  # the length first: a hostile n of 10**12 is no list
        dup = sorted({i for i, c in Counter(seen).items() if c > 1})
        raise InputError(f"the parts must cover images 0..{n - 1} exactly once; missing {_first_missing(seen, n)}, repeated {dup[:10]}")
    return parts


def _first_missing(have: Iterable[int], n: int, count: int = 10) -> list[int]:
    """The first ``count`` of ``0..n-1`` not in ``have`` (lazy: a hostile ``n`` of 10**12 costs nothing)."""
    got = set(have)
    return list(itertools.islice((i for i in range(n) if i not in got), count))


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _load_part(out_dir: Path, f: Path, rank: int, world: int) -> dict[str, Any]:
    """One part file, parsed and checked field by field (a hand-edited or truncated file is one clear line)."""
    name = f"parts/{f.name}"
    try:
        part = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"part file {str(f)!r} cannot be read ({first}); rerender the folder into an empty OUT_DIR") from err
    if not isinstance(part, dict):
        raise InputError(f"part file {str(f)!r} holds {type(part).__name__}, not a JSON object; rerender the folder into an empty OUT_DIR")
    if part.get("rank") != rank or part.get("world") != world:
        raise InputError(f"part file {str(f)!r} says rank {part.get('rank')!r} of {part.get('world')!r}, its name rank {rank} of {world}")
    if not _is_int(part.get("n")) or part["n"] < 0 or not isinstance(part.get("images"), list) \
            or not isinstance(part.get("settings"), dict):
        raise InputError(f"part file {str(f)!r} lacks a valid 'n' (int), 'images' (list) or 'settings' (object); rerender the folder")
    if not isinstance(part.get("seconds", 0.0), (int, float)) or isinstance(part.get("seconds"), bool):
        raise InputError(f"part file {str(f)!r} has 'seconds' {part.get('seconds')!r}; expected a number")
    for j, e in enumerate(part["images"]):
        if not isinstance(e, dict) or not _is_int(e.get("index")) or not isinstance(e.get("path"), str):
            raise InputError(f"part file {str(f)!r}: image entry {j} ({e!r:.80}) needs an int 'index' and str 'path', 'page', 'grid'")
        for key in ("page", "grid"):
            contained(out_dir, e.get(key), f"{name}: image {e['index']} {key!r}")
    failed = part.get("failed", [])
    if not isinstance(failed, list) or not all(isinstance(e, dict) and _is_int(e.get("index")) and isinstance(e.get("path"), str)
                                               and isinstance(e.get("error"), str) for e in failed):
        raise InputError(f"part file {str(f)!r}: 'failed' must be a list of {{'index': int, 'path': str, 'error': str}}; rerender the folder")
    return part


def unreadable(parts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The images no rank could read, in dataset order: ``[{"index", "path", "error"}, ...]``."""
    return sorted((dict(e) for p in parts for e in p.get("failed", [])), key=lambda e: int(e["index"]))


def _row(out_dir: Path, entry: Mapping[str, Any]) -> str:
    grid = contained(out_dir, entry["grid"], f"image {entry['index']} grid")
    try:
        png = grid.read_bytes()
    except OSError as err:
        raise InputError(f"the grid {entry['grid']!r} of image {entry['index']} ({entry['path']!r}) cannot be read "
                         f"from {str(out_dir)!r} ({err.strerror or err}); rerender the folder") from err
    b64 = base64.b64encode(png).decode("ascii")
    path = html.escape(str(entry["path"]))
    href = html.escape(quote(str(entry["page"])), quote=True)
    return (
        f"<tr id='img-{int(entry['index'])}'><td>{int(entry['index'])}</td>"
        f"<td><a href=\"{href}\">{path}</a></td>"
        f"<td><img src=\"data:image/png;base64,{b64}\" alt=\"{html.escape(str(entry['path']), quote=True)}\"></td></tr>"
    )


def index_html(out_dir: str | Path, entries: Sequence[Mapping[str, Any]], settings: Mapping[str, Any], timing: str = "",
               title: str = "saliency-widget batch report", failed: Sequence[Mapping[str, Any]] = ()) -> str:
    """The index page: one row per image (index, link to its page, its PNG row inline), in ``entries`` order.

    Parameters
    ----------
    out_dir
        The batch report folder (the PNG rows are read from it).
    entries
        ``{"index", "path", "page", "grid"}`` per image; ``page`` and ``grid`` relative to ``out_dir``.
    settings
        Shown as a table (methods, sign, colormap, model, folder).
    timing
        One line on how long it took; kept in its own ``<p class='sw-timing'>``.
    title
        The page title.
    failed
        ``{"index", "path", "error"}`` per image that could not be read: listed first, with the reason.
    """
    rows = "".join(_row(Path(out_dir), e) for e in entries)
    lost = "".join(f"<tr id='img-{int(e['index'])}'><td>{int(e['index'])}</td><td>{html.escape(str(e['path']))}</td>"
                   f"<td>{html.escape(str(e['error']))}</td></tr>" for e in failed)
    warning = (f"<h2 class='sw-unreadable' style='color:#b00'>Unreadable images ({len(failed)})</h2><p>These files could not be "
               f"read and have no maps; every other image is below.</p><table><tr><th>#</th><th>image</th><th>why</th></tr>{lost}</table>"
               if failed else "")
    table = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in settings.items())
    body = (
        f"{warning}<h2>Settings</h2><table>{table}</table>"
        f"<h2>Images ({len(entries)})</h2><p>Each row: the input and one map per method; the link opens the image's report "
        f"(class probabilities, target).</p><table><tr><th>#</th><th>image</th><th>maps</th></tr>{rows}</table>"
        f"<p class='sw-timing' style='color:#888;font-size:12px'>{html.escape(timing)}</p>"
    )
    return html_document(title, body)


def merge_parts(out_dir: str | Path, world: int | None = None) -> Path:
    """Merge the part files of one run into ``OUT_DIR/index.html`` (works in one process, after any run).

    Parameters
    ----------
    out_dir
        The batch report folder.
    world
        Number of processes of the run (None: the only run present).

    Returns
    -------
    Path
        The index file.
    """
    out = Path(out_dir)
    parts = read_parts(out, world)
    entries = sorted((e for p in parts for e in p["images"]), key=lambda e: int(e["index"]))
    slowest = max(float(p.get("seconds", 0.0)) for p in parts)
    failed = unreadable(parts)
    timing = f"rendered {len(entries)} image(s) on {len(parts)} process(es) in {slowest:.1f} s"
    timing += f"; {len(failed)} could not be read" if failed else ""
    index = out / "index.html"
    return write_atomic(index, index_html(out, entries, parts[0]["settings"], timing, failed=failed))
