"""The atlas's HTML pages, from its manifest (``atlas.json``): pure text, no torch, no Jupyter.

Every page is static HTML that opens from ``file://``: one inlined stylesheet and one inlined
script, both allowed by their SHA-256 in the page's own Content-Security-Policy
(``default-src 'none'``, images from the site only, no inline style attribute), as the
interactive report does. The histograms are inline SVG (presentation attributes, no style).
The script only navigates: the jump box, ``index.html#LAYER/N`` deep links and the arrow keys.

Site layout (paths relative to the site)::

    index.html                     model, data, layers, every filter's visualization as a grid
    atlas.json                     the manifest (see :mod:`saliency_widget.atlas.build`)
    layers/<layer>/index.html      one layer: every filter with its visualization and top patch
    layers/<layer>/c0007.html      one filter: visualization, top-9 patches and projections,
                                   histogram, neighbours (stable deep link)
    img/<layer>/fv_c0007.png       the filter's feature visualization
    index/...                      the mining index the patches come from (or patches/... copied)
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["CSP", "CSS", "JS", "filter_page", "filter_path", "histogram_svg", "index_page", "layer_page", "layer_path"]

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#222;background:#fff}
header{display:flex;flex-wrap:wrap;gap:12px;align-items:center;justify-content:space-between;padding:8px 18px;
 background:#f3f5f8;border-bottom:1px solid #dde2ea}
header nav a{color:#2f6db5;text-decoration:none}header nav a:hover{text-decoration:underline}
main{padding:12px 18px 24px}h1{font-size:20px;margin:4px 0 10px}h2{font-size:16px;margin:18px 0 8px}
h3{font-size:13px;margin:8px 0 4px;color:#444}
form.jump{display:flex;gap:6px;align-items:center;font-size:13px}form.jump input{width:70px}
form.jump select,form.jump input,form.jump button{font:inherit;padding:2px 6px}
.msg{color:#b00;font-size:12px;min-width:1em}
table.facts{border-collapse:collapse;margin:4px 0 10px}table.facts td,table.facts th{padding:3px 10px;border:1px solid #ddd;
 font-size:13px;text-align:left;vertical-align:top}table.facts th{background:#f4f4f4;font-weight:600}
.grid{display:flex;flex-wrap:wrap;gap:6px}
.cell{display:flex;flex-direction:column;align-items:center;font-size:11px;color:#555;text-decoration:none;
 border:2px solid transparent;border-radius:4px;padding:2px}
.cell:hover,.cell:focus{border-color:#2f6db5}.cell.here{border-color:#e4572e}
.thumb{width:64px;height:64px;image-rendering:pixelated;background:#eee}
.pair{display:flex;gap:2px}.wide .thumb{width:80px;height:80px}
.panels{display:flex;flex-wrap:wrap;gap:22px;align-items:flex-start}
.fv{width:256px;height:256px;image-rendering:pixelated;border:1px solid #ccc}
.nine{display:grid;grid-template-columns:repeat(3,100px);gap:4px}
.nine figure{margin:0;text-align:center;font-size:10px;color:#555}
.nine img{width:96px;height:96px;object-fit:contain;image-rendering:pixelated;border:1px solid #ccc;background:#f4f4f4}
.nine figcaption{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;max-width:100px}
.hist text{font-size:10px;fill:#333}.note{font-size:12px;color:#666;max-width:720px}
.neighbours{display:flex;flex-wrap:wrap;gap:4px;align-items:center}
.prevnext a{margin-right:14px}.timing{font-size:12px;color:#888}
"""

JS = """
(() => {
  const nav = JSON.parse(document.getElementById('atlas-nav').textContent);
  const root = document.body.dataset.root || '';
  const pad = (n) => String(n).padStart(4, '0');
  const layerOf = (key) => nav.layers.find((l) => l.key === key || l.dir === key);
  const url = (layer, n) => root + 'layers/' + encodeURIComponent(layer.dir) + '/c' + pad(n) + '.html';
  function target(key, text) {
    const layer = layerOf(key);
    if (!layer) return [null, 'unknown layer ' + key + '; layers: ' + nav.layers.map((l) => l.key).join(', ')];
    const t = String(text).trim().replace(/^#/, '');
    if (!/^[0-9]+$/.test(t)) return [null, 'give a filter number, e.g. ' + layer.filters[0]];
    const n = Number(t);
    if (!layer.filters.includes(n)) {
      return [null, 'filter ' + n + ' is not in ' + layer.key + ' (filters ' + layer.filters[0] + '..' + layer.filters[layer.filters.length - 1] + ')'];
    }
    return [url(layer, n), ''];
  }
  const form = document.querySelector('form.jump');
  if (form) {
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const [where, why] = target(form.elements.layer.value, form.elements.filter.value);
      form.querySelector('.msg').textContent = why;
      if (where) location.href = where;
    });
  }
  const m = /^#(.+)\\/#?([0-9]+)$/.exec(decodeURIComponent(location.hash));
  if (m && document.body.dataset.page === 'index') {
    const [where, why] = target(m[1], m[2]);
    if (where) location.replace(where);
    else if (form) form.querySelector('.msg').textContent = why;
  }
  document.addEventListener('keydown', (ev) => {
    if (ev.target.closest && ev.target.closest('input,select,textarea')) return;
    const rel = { ArrowLeft: 'prev', ArrowRight: 'next' }[ev.key];
    const a = rel && document.querySelector('a[rel=' + rel + ']');
    if (a) location.href = a.href;
  });
})();
"""


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


CSP = (
    f"default-src 'none'; script-src '{_sha256(JS)}'; style-src '{_sha256(CSS)}'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'"
)
"""The Content-Security-Policy of every page: nothing but its own script, its own stylesheet and the site's images."""

e = html.escape


def layer_path(layer: Mapping[str, Any]) -> str:
    """The layer page, relative to the site."""
    return f"layers/{layer['dir']}/index.html"


def filter_path(layer: Mapping[str, Any], channel: int) -> str:
    """The filter page (the stable deep link), relative to the site."""
    return f"layers/{layer['dir']}/c{int(channel):04d}.html"


def _json_for_script(data: Any) -> str:
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _nav(atlas: Mapping[str, Any]) -> str:
    layers = [{"key": k, "dir": v["dir"], "filters": [f["index"] for f in v["filters"]]} for k, v in atlas["layers"].items()]
    return _json_for_script({"layers": layers})


def _jump(atlas: Mapping[str, Any], current: str | None) -> str:
    opts = "".join(f"<option value='{e(k)}'{' selected' if k == current else ''}>{e(k)}</option>" for k in atlas["layers"])
    return ("<form class='jump' role='search'><label>Jump to <select name='layer' aria-label='layer'>" + opts + "</select></label>"
            "<input name='filter' aria-label='filter number' placeholder='filter #' inputmode='numeric'>"
            "<button type='submit'>Go</button><span class='msg' role='status'></span></form>")


def _page(atlas: Mapping[str, Any], title: str, crumbs: Sequence[tuple[str, str | None]], body: str, root: str, kind: str,
          current: str | None = None) -> str:
    trail = " › ".join(f"<a href='{e(href)}'>{e(text)}</a>" if href else f"<span>{e(text)}</span>" for text, href in crumbs)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{e(title)}</title><style>{CSS}</style></head>"
        f"<body data-root='{e(root)}' data-page='{e(kind)}'><header><nav>{trail}</nav>{_jump(atlas, current)}</header>"
        f"<main>{body}</main>"
        f"<script type='application/json' id='atlas-nav'>{_nav(atlas)}</script>"
        f"<script>{JS}</script></body></html>\n"
    )


def _num(v: float) -> str:
    return f"{float(v):.4g}"


def histogram_svg(edges: Sequence[float], counts: Sequence[int], marks: Sequence[float] = (), width: int = 380, height: int = 160) -> str:
    """An inline SVG histogram: bars on a log(1 + count) scale, the ``marks`` (e.g. the top-9) as red ticks.

    Parameters
    ----------
    edges
        ``B + 1`` increasing bin edges.
    counts
        ``B`` counts.
    marks
        Values to mark under the axis.
    width, height
        Size in CSS pixels.
    """
    import math

    left, right, top, bottom = 34, 8, 18, 30
    w, h = width - left - right, height - top - bottom
    lo, hi = float(edges[0]), float(edges[-1])
    span = hi - lo or 1.0
    peak = math.log1p(max(counts) if counts else 1) or 1.0
    bw = w / max(1, len(counts))
    bars = []
    for i, c in enumerate(counts):
        bh = h * math.log1p(c) / peak
        bars.append(f"<rect x='{left + i * bw:.1f}' y='{top + h - bh:.1f}' width='{max(bw - 1, 1):.1f}' height='{bh:.1f}' fill='#4c78a8'>"
                    f"<title>{_num(edges[i])} .. {_num(edges[i + 1])}: {int(c)} image(s)</title></rect>")
    ticks = "".join(f"<line x1='{left + (float(v) - lo) / span * w:.1f}' x2='{left + (float(v) - lo) / span * w:.1f}' "
                    f"y1='{top + h + 1}' y2='{top + h + 7}' stroke='#e4572e' stroke-width='2'/>" for v in marks)
    top_count = max(counts) if counts else 0
    return (
        f"<svg class='hist' role='img' aria-label='histogram' width='{width}' height='{height}' viewBox='0 0 {width} {height}'>"
        + "".join(bars)
        + f"<line x1='{left}' x2='{left + w}' y1='{top + h}' y2='{top + h}' stroke='#333'/>{ticks}"
        f"<text x='{left}' y='{height - 6}'>{_num(lo)}</text>"
        f"<text x='{left + w}' y='{height - 6}' text-anchor='end'>{_num(hi)}</text>"
        f"<text x='{left + w / 2:.1f}' y='{height - 6}' text-anchor='middle'>max activation per image</text>"
        f"<text x='{left - 4}' y='{top + 4}' text-anchor='end'>{top_count}</text>"
        f"<text x='{left}' y='10'>images per bin (log scale)</text>"
        f"<text x='{left - 4}' y='{top + h}' text-anchor='end'>0</text></svg>"
    )


def _facts(rows: Sequence[tuple[str, str]]) -> str:
    return "<table class='facts'>" + "".join(f"<tr><th>{e(k)}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def index_page(atlas: Mapping[str, Any], timing_line: str) -> str:
    """``index.html``: the model, the data, the layers and every filter's visualization as a grid of links."""
    model, data, fv = atlas["model"], atlas["data"], atlas["featviz"]
    facts = _facts([
        ("model", f"{e(model['spec'])} ({e(model['class'])}, {model['parameters']:,} parameters, weights sha256 {e(model['sha256'][:12])})"),
        ("input", e(model["input"])),
        ("data", f"{e(data['name'])}: {data['images']:,} image(s)" + (f" (identity {e(data['identity'][:16])})" if data["identity"] != data["name"] else "")),
        ("top-k", f"{atlas['k']} strongest images per filter (one position each), projected with {e(atlas['method'])}"),
        ("feature visualization", f"{fv['steps']} step(s), {fv['size']} px, {e(fv['param'])} parametrisation, seed {fv['seed']}, "
                                  f"{'with' if fv['transforms'] else 'without'} jitter/scale/rotation"),
        ("layers", ", ".join(f"<a href='{e(layer_path(v))}'>{e(k)}</a> ({len(v['filters'])} of {v['channels']} filters)"
                             for k, v in atlas["layers"].items())),
    ])
    sections = []
    for key, layer in atlas["layers"].items():
        cells = "".join(
            f"<a class='cell' href='{e(filter_path(layer, f['index']))}' title='{e(key)} filter {f['index']}'>"
            f"<img class='thumb' src='{e(f['visualization'])}' alt='{e(key)} #{f['index']}'>#{f['index']}</a>"
            for f in layer["filters"]
        )
        sections.append(f"<section id='{e(layer['dir'])}'><h2><a href='{e(layer_path(layer))}'>{e(key)}</a> "
                        f"<small>({len(layer['filters'])} filters, output {e(layer['shape'])})</small></h2><div class='grid'>{cells}</div></section>")
    body = (f"<h1>{e(atlas['title'])}</h1>{facts}"
            "<p class='note'>Each image is what a filter wants to see (feature visualization); click one for its 9 strongest image "
            "patches from the data, their DeconvNet projections and the filter's activation over the data. Deep links: "
            "<code>layers/LAYER/c0007.html</code> or <code>index.html#LAYER/7</code>; the arrow keys step through the filters.</p>"
            + "".join(sections) + f"<p class='timing'>{e(timing_line)}</p>")
    return _page(atlas, atlas["title"], [("atlas", None)], body, "", "index")


def layer_page(atlas: Mapping[str, Any], key: str) -> str:
    """``layers/<layer>/index.html``: every filter with its visualization and its strongest image patch."""
    layer = atlas["layers"][key]
    cells = "".join(
        f"<a class='cell wide' href='c{f['index']:04d}.html' title='filter {f['index']}'><span class='pair'>"
        f"<img class='thumb' src='../../{e(f['visualization'])}' alt='visualization #{f['index']}'>"
        f"<img class='thumb' src='../../{e(f['top'][0])}' alt='top patch #{f['index']}'></span>"
        f"#{f['index']} · max {_num(f['values'][0])} · fires on {100 * f['active']:.0f}%</a>"
        for f in layer["filters"]
    )
    body = (f"<h1>{e(key)}</h1><p class='note'>{len(layer['filters'])} of {layer['channels']} filters, output {e(layer['shape'])}. "
            "Left: the filter's feature visualization; right: its strongest image patch in the data; then its largest activation "
            "and the share of images in which it fires at all.</p><div class='grid'>" + cells + "</div>")
    return _page(atlas, f"{key}: {atlas['title']}", [("atlas", "../../index.html"), (key, None)], body, "../../", "layer", key)


def filter_page(atlas: Mapping[str, Any], key: str, position: int) -> str:
    """``layers/<layer>/c####.html``: one filter in full (see the module docstring)."""
    layer = atlas["layers"][key]
    filters = layer["filters"]
    f = filters[position]
    c = int(f["index"])
    up = "../../"

    def nine(paths: Sequence[str], kind: str) -> str:
        figs = []
        for j, p in enumerate(paths):
            name = str(f["images"][j])
            short = name.rsplit("#", 1)[-1] if "#" in name else name.rsplit("/", 1)[-1]
            full = f"activation {_num(f['values'][j])} in image {name}"
            figs.append(f"<figure><img src='{up}{e(p)}' alt='{kind} {j + 1}' title='{e(full)}'>"
                        f"<figcaption>{_num(f['values'][j])} · {e(short)}</figcaption></figure>")
        return "<div class='nine'>" + "".join(figs) + "</div>"

    prev_f = filters[position - 1] if position > 0 else None
    next_f = filters[position + 1] if position + 1 < len(filters) else None
    links = ("<p class='prevnext'>"
             + (f"<a rel='prev' href='c{prev_f['index']:04d}.html'>← filter {prev_f['index']}</a>" if prev_f else "")
             + (f"<a rel='next' href='c{next_f['index']:04d}.html'>filter {next_f['index']} →</a>" if next_f else "")
             + f"<a href='index.html'>all of {e(key)}</a></p>")
    near = filters[max(0, position - 6) : position + 7]
    strip = "".join(
        f"<a class='cell{' here' if g['index'] == c else ''}' href='c{g['index']:04d}.html' title='filter {g['index']}'>"
        f"<img class='thumb' src='{up}{e(g['visualization'])}' alt='#{g['index']}'>#{g['index']}</a>"
        for g in near
    )
    h = f["histogram"]
    n_img = int(sum(h["counts"]))
    stats = (f"Over {n_img:,} images: fires (maximum above 0) on {100 * f['active']:.1f}% of them; median of the per-image maximum "
             f"{_num(f['median'])}; the top-{len(f['values'])} (red ticks) go from {_num(f['values'][-1])} to {_num(f['values'][0])}.")
    body = (
        f"<h1>{e(key)} · filter {c}</h1>{links}<div class='panels'>"
        f"<section><h3>feature visualization</h3><img class='fv' src='{up}{e(f['visualization'])}' alt='feature visualization'>"
        f"<p class='note'>objective value {_num(f['visualization_value'])}</p></section>"
        f"<section><h3>top-{len(f['top'])} image patches</h3>{nine(f['top'], 'patch')}</section>"
        f"<section><h3>their projections ({e(atlas['method'])})</h3>{nine(f['projections'], 'projection')}</section>"
        f"<section><h3>activation over the data</h3>{histogram_svg(h['edges'], h['counts'], f['values'])}"
        f"<p class='note'>{e(stats)}</p></section></div>"
        f"<h2>neighbouring filters</h2><div class='neighbours'>{strip}</div>"
    )
    crumbs = [("atlas", "../../index.html"), (key, "index.html"), (f"filter {c}", None)]
    return _page(atlas, f"{key} #{c}: {atlas['title']}", crumbs, body, up, "filter", key)
