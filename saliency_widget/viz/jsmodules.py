"""The package's ES modules (``js/``) as text, with their relative imports inlined.

The offline page inlines its script (its Content-Security-Policy allows that one script by
hash, and a file opened from disk cannot import a sibling) and anywidget takes one module as
text, so both take :func:`js_bundle`: the module with each ``import ... from "./x.js"`` replaced
by the text of ``x.js`` (once), and ``export * from "./x.js"`` dropped. ``js/render.js`` is
thereby the one renderer of the widget's front end and of the offline page.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

__all__ = ["js_bundle", "js_path"]

_IMPORT = re.compile(r'^\s*(?:import\s*\{[^}]*\}\s*from|export\s*\*\s*from)\s*"\./([\w.-]+\.js)";\s*$', re.MULTILINE)


def js_path(name: str) -> Path:
    """Locate an ES module: ``saliency_widget/static/<name>`` in a wheel, ``js/<name>`` in a checkout.

    Raises
    ------
    FileNotFoundError
        Neither location holds it (a broken install).
    """
    try:
        static = resources.files("saliency_widget").joinpath("static").joinpath(name)
        if static.is_file():
            return Path(str(static))
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover - odd installs
        pass
    pkg = Path(__file__).resolve().parents[1]
    for cand in (pkg / "static" / name, pkg.parent / "js" / name):
        if cand.is_file():
            return cand
    raise FileNotFoundError(f"saliency_widget front-end module {name!r} not found in {pkg / 'static'} nor {pkg.parent / 'js'}")


def js_bundle(name: str) -> str:
    """The text of module ``name`` with its relative imports inlined (each imported module once, first).

    Returns
    -------
    str
        One ES module; the inlined modules' ``export`` declarations stay exports of it.
    """
    seen: list[str] = []
    parts: list[str] = []

    def add(module: str) -> None:
        if module in seen:
            return
        seen.append(module)
        text = js_path(module).read_text(encoding="utf-8")
        for dep in _IMPORT.findall(text):
            add(dep)
        parts.append(_IMPORT.sub("", text))

    add(name)
    return "\n".join(parts)
