"""The interactive report as one HTML page: manifest + payload + the inlined viewer (js/viewer.js).

The page loads nothing: the viewer's source, its stylesheet, the colormap tables and every
array are inside it. It declares its own Content-Security-Policy (``default-src 'none'``, the
script and the stylesheet allowed by their SHA-256 hashes), so even a bug could not make it
fetch anything, and a strict host policy has nothing to object to (no inline handlers).
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html
import json
import platform
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine import method_label
from ..errors import InputError
from ..views.options import CLIPS, SIGNS
from . import render as R
from .bundle import BUDGET_BYTES, BundleSize, Packer
from .jsmodules import js_bundle

__all__ = ["VIEWER_JS", "InteractivePage", "interactive_page", "viewer_source"]

VIEWER_JS = "viewer.js"

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:20px;color:#222;background:#fff}
.sw-viewer h1{font-size:20px;margin:0 0 8px}.sw-viewer h2{font-size:15px;margin:0 0 6px;color:#333}
.sw-extra h2{font-size:15px;margin:0 0 6px;color:#333}.sw-extra h3{font-size:13px;margin:10px 0 4px}
.sw-section{border:1px solid #e2e2e2;border-radius:6px;padding:10px 12px;margin:0 0 12px;background:#fcfcfc}
.sw-top{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}.sw-top>.sw-section{flex:0 1 auto}
.sw-top>.sw-section:first-child{max-width:560px}.sw-filters{position:relative}
.sw-row{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start;margin:4px 0}
.sw-btn{border:1px solid #bbb;background:#fff;border-radius:4px;padding:4px 9px;font-size:13px;cursor:pointer}
.sw-btn:hover{background:#eef3fb}.sw-btn.sw-on{background:#2f6db5;border-color:#2f6db5;color:#fff}
.sw-btn.sw-off{color:#999;border-style:dashed}
.sw-panel{margin:0;text-align:center}.sw-title{font-size:12px;color:#444;margin-bottom:3px;font-weight:600}
.sw-stack{position:relative;display:inline-block;line-height:0}
.sw-canvas,.sw-filter{image-rendering:pixelated;border:1px solid #ccc;background:#f4f4f4}
.sw-msg{display:flex;align-items:center;justify-content:center;box-sizing:border-box;border:1px solid #ccc;
 background:#f0f0f0;color:#a00;font-size:12px;line-height:1.3;padding:8px}
.sw-msg[hidden],.sw-canvas[hidden],canvas[hidden],div[hidden]{display:none}
.sw-caption{font-size:11px;color:#555;max-width:256px;margin-top:3px;line-height:1.3;white-space:pre-wrap}
.sw-scale{display:block;width:256px;height:10px;margin-top:4px;border:1px solid #ccc}
.sw-scale-labels{display:flex;justify-content:space-between;width:258px;font-size:11px;color:#333}
.sw-controls label{font-size:13px;margin-right:6px}
.sw-chart{display:flex;flex-direction:column;gap:3px;min-width:300px}
.sw-class{display:grid;grid-template-columns:110px 165px 48px;align-items:center;border:1px solid transparent;
 background:none;padding:2px 4px;font-size:13px;text-align:left;cursor:pointer;border-radius:4px}
.sw-class:hover:not([disabled]){background:#eef3fb}.sw-class.sw-on{border-color:#2f6db5;background:#e6eefa;font-weight:600}
.sw-class[disabled]{cursor:default;opacity:.55}.sw-label{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.sw-bar{display:inline-block;height:12px;background:#4c78a8;border-radius:2px}.sw-p{text-align:right}
.sw-thumb{cursor:pointer;padding:3px;border:2px solid transparent;border-radius:4px}.sw-thumb.sw-on{border-color:#2f6db5}
.sw-thumb .sw-title{font-weight:400;font-size:11px;max-width:112px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.sw-filters{display:grid;grid-template-columns:repeat(8,46px);gap:3px;max-height:420px;overflow:auto;padding:2px}
.sw-fcell{display:flex;flex-direction:column;align-items:center;font-size:9px;color:#666}
.sw-filter{width:42px;height:42px;cursor:pointer;border:2px solid transparent}.sw-filter.sw-on{border-color:#e4572e}
.sw-marker{position:absolute;inset:1px;pointer-events:none}
.sw-dot{position:absolute;width:6px;height:6px;margin:-4px 0 0 -4px;border-radius:50%;border:1px solid #000;background:#fff;opacity:.8}
.sw-dot.sw-sel{width:10px;height:10px;margin:-6px 0 0 -6px;background:#e4572e;border-color:#fff;opacity:1}
[data-panel=feature]{cursor:crosshair}
.sw-hint{font-size:12px;color:#666;margin:2px 0 6px}.sw-settings th{text-align:left;background:#f4f4f4}
.sw-settings td,.sw-settings th{padding:3px 8px;border:1px solid #ddd;font-size:12px}.sw-settings{border-collapse:collapse}
.sw-foot{font-size:12px;color:#888}.sw-error{color:#b00}
"""


def viewer_source() -> str:
    """The viewer's source with the renderer it imports inlined (``js/viewer.js`` + ``js/render.js``).

    Raises
    ------
    FileNotFoundError
        A module is missing (a broken install).
    """
    return js_bundle(VIEWER_JS)


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def _json_for_script(data: Any) -> str:
    """JSON that cannot close its ``<script>`` element (``<``, ``>``, ``&`` escaped)."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def versions() -> dict[str, str]:
    """Versions of what computed the views (shown in the page's settings table)."""
    import torch

    from .. import __version__

    return {"saliency-widget": __version__, "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()}


@dataclass
class InteractivePage:
    """An assembled interactive report: the page, its manifest and the payload it decodes.

    Attributes
    ----------
    html
        The page.
    manifest
        The JSON manifest embedded in it (arrays as references into :attr:`payload`).
    payload
        The uncompressed binary payload.
    size
        Sizes by part; ``size.page`` is the page in bytes.
    """

    html: str
    manifest: dict[str, Any]
    payload: bytes
    size: BundleSize

    def summary(self) -> str:
        """One line on the size, for printing on export."""
        return self.size.summary(BUDGET_BYTES)


def interactive_page(
    images: Sequence[Mapping[str, Any]],
    packer: Packer,
    *,
    title: str,
    state: Mapping[str, Any],
    settings: Mapping[str, Any],
    extra_html: str = "",
    featviz: str | None = None,
) -> InteractivePage:
    """Assemble the page from the images' manifests (:func:`~.interactive.collect_image`) and ``packer``.

    Parameters
    ----------
    images
        One manifest entry per image; at least one.
    packer
        Holds every array the entries refer to; the colormap tables are added here.
    title
        Title and heading of the page.
    state
        The first state shown: ``image``, ``method``, ``target``, ``layer``, ``channel``,
        ``position`` (index into the filter's precomputed positions), ``sign``, ``clip``,
        ``cmap``, ``overlay``, ``alpha``.
    settings
        Shown as the settings table (text only).
    extra_html
        Static HTML (no script) shown below the viewer. Its ``style="..."`` attributes are
        allowed one by one, by hash (``'unsafe-hashes'``), so the page's CSP stays strict.
    featviz
        The settings of the filters' feature visualizations when the layer entries carry them
        (:mod:`~.interactive_featviz`); the viewer then shows "what excites filter c".

    Returns
    -------
    InteractivePage
    """
    if not images:
        raise InputError("an interactive report needs at least one image")
    cmaps = {name: packer.add(R.colormap_lut(name), "colormaps") for name in R.COLORMAPS}
    methods = sorted({m for img in images for m in img["methods"]})
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    manifest = {
        "format": 1,
        "title": title,
        "cmaps": cmaps,
        "diverging": list(R.DIVERGING),
        "signs": list(SIGNS),
        "clips": list(CLIPS),
        "labels": {m: method_label(m) for m in methods},
        "images": list(images),
        "state": dict(state),
        "settings": {**{str(k): str(v) for k, v in settings.items()}, "exported": stamp},
        "versions": versions(),
    }
    if featviz is not None:  # absent otherwise: a page without visualizations is byte-for-byte as before
        manifest["featviz"] = featviz
    payload = packer.payload_base64()
    js = viewer_source()
    # inline style attributes of the extra HTML, each allowed by its hash (CSP level 3)
    attrs = sorted(set(re.findall(r'style="([^"]*)"', extra_html)))
    attr_src = (" 'unsafe-hashes' " + " ".join(f"'{_sha256(a)}'" for a in attrs)) if attrs else ""
    csp = (
        f"default-src 'none'; script-src '{_sha256(js)}'; style-src '{_sha256(_CSS)}'{attr_src}; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{csp}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        "<div class='sw-viewer'><noscript>This report needs JavaScript to show its views.</noscript>"
        f"<script type='application/json' class='sw-manifest'>{_json_for_script(manifest)}</script>"
        f"<script type='application/octet-stream' class='sw-payload'>{payload}</script></div>"
        + (f"<section class='sw-section sw-extra'>{extra_html}</section>" if extra_html else "")
        + f"<script type='module'>{js}</script></body></html>"
    )
    packer.sizes.page = len(page.encode("utf-8"))
    return InteractivePage(page, manifest, packer.raw(), packer.sizes)
