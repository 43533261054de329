// Compare view of the saliency explorer: every method's raw map side by side (anywidget module, no build step).
//
// The kernel sends every tile's 16-bit planes once, in one binary buffer (`planes`), and
// `tiles` says per tile where its planes start and how to decode them (js/planes.js, as the
// main map's). Each tile is drawn by
// the one renderer, js/render.js, with its own colour scale, exactly as the main map
// (js/map_view.js): a display change redraws the whole grid here, without the kernel.
//
// Model traits (Python class saliency_widget.widget.mapcanvas.CompareCanvas):
//   planes   Bytes    every tile's abs plane (uint16) + sum plane (int16) (or sum alone), one after the other
//   tiles    [{method, label, offset, length, shape, abs, sum, single, message}]
//   columns  int      tiles per row;  tile_size  int  CSS size of a tile's square
//   picked   {method, seq}   set here when a tile is clicked (the explorer shows that method)
//   base, luts, choices, diverging, option_specs and the option traits: see js/panel.js

import { renderView } from "./render.js";
import { makePanel, optionEvents, paintPanel, readBase, readLuts, readOptions, syncClasses, toBytes } from "./panel.js";
import { decodePlanes } from "./planes.js";

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "sw-cv-root";
  el.appendChild(root);
  let tiles = [], base = null, luts = {}, stale = false;

  function readTiles() { // decode every tile once per new compare view
    const bytes = toBytes(model.get("planes"));
    root.textContent = "";
    tiles = (model.get("tiles") || []).map((meta) => {
      const cell = document.createElement("div");
      cell.className = "sw-cv-tile";
      cell.dataset.method = meta.method;
      const title = document.createElement("div");
      title.className = "sw-cv-title";
      title.textContent = meta.label;
      title.title = meta.label;
      const panel = makePanel();
      cell.append(title, panel.root);
      cell.title = `${meta.label}: click to show this method`;
      cell.addEventListener("click", () => { // a tile selects its method (as on the offline page)
        model.set("picked", { method: meta.method, seq: Number((model.get("picked") || {}).seq || 0) + 1 });
        model.save_changes();
      });
      root.append(cell);
      const planes = meta.message ? null : decodePlanes(bytes, meta, meta.offset || 0);
      return { meta, panel, planes, cache: new Map() };
    });
  }

  function paint() {
    const t0 = performance.now();
    if (stale) { stale = false; readTiles(); }
    const opts = readOptions(model);
    root.style.setProperty("--sw-cv-columns", String(model.get("columns") || 5));
    root.style.setProperty("--sw-mv-size", `${model.get("tile_size") || 160}px`);
    root.hidden = tiles.length === 0;
    for (const t of tiles) {
      let r = { rgba: null, message: t.meta.message || "no map" };
      if (t.planes) r = renderView(t.planes, opts, luts, model.get("diverging") || [], opts.overlay ? base : null, t.cache);
      const shown = paintPanel(t.panel, r, t.planes ? t.planes.w : 0, t.planes ? t.planes.h : 0, luts, opts.sign);
      t.panel.canvas.dataset.cmap = shown ? r.cmap : "";
    }
    // for tests and tools: how often the grid was drawn, with what, and how long it took
    root.dataset.paints = String(Number(root.dataset.paints || 0) + 1);
    root.dataset.options = JSON.stringify(opts);
    root.dataset.ms = (performance.now() - t0).toFixed(2);
  }

  let queued = false;
  function schedule() { // one paint per frame, however many traits changed together
    if (queued) return;
    queued = true;
    queueMicrotask(() => { queued = false; paint(); });
  }
  const events = [
    ["change:planes change:tiles", () => { stale = true; schedule(); }], // decoded once, however many of them changed
    ["change:base", () => { base = readBase(model); schedule(); }],
    ["change:luts change:choices", () => { luts = readLuts(model); schedule(); }],
    [`${optionEvents(model)} change:columns change:tile_size`, schedule],
  ];
  events.push(["change:_dom_classes", syncClasses(model, el)]); // "sw-busy" while a new view computes
  for (const [names, fn] of events) model.on(names, fn);
  luts = readLuts(model); base = readBase(model); readTiles(); paint();

  return () => {
    for (const [names, fn] of events) model.off(names, fn);
    root.remove();
  };
}

export default { render };
