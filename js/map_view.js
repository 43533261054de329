// Map panel of the saliency explorer (anywidget front-end module, no build step).
//
// The kernel sends each raw map once, as binary: `planes` holds the `abs` plane (uint16) then
// the `sum` plane (int16), little-endian (a single-channel map: the `sum` plane alone), `meta`
// their shape and scales (value = q * scale); js/planes.js decodes them.
// Every display option is applied here by the one renderer, js/render.js (the offline page's
// too), so a display-only change is drawn in the browser without asking the kernel. The
// controls drive the option traits in the browser (ipywidgets jsdlink); which traits those are
// is read from `option_specs` (generated in Python from the options' specs), see js/panel.js.
//
// Model traits (Python class saliency_widget.widget.mapcanvas.MapCanvas):
//   planes   Bytes    abs plane (H*W uint16) + sum plane (H*W int16); the sum plane alone when meta.single
//   meta     {shape: [H, W], abs, sum, single, message, fraction}   scales; message when the map has none;
//            fraction (0..1) only on a partial map (a batched method still refining it)
//   base, luts, choices, diverging, option_specs and the option traits: see js/panel.js
//   size     int      CSS size of the square panel (the stylesheet may scale it)

import { renderView } from "./render.js";
import { makePanel, optionEvents, paintPanel, readBase, readLuts, readOptions, syncClasses, toBytes } from "./panel.js";
import { decodePlanes } from "./planes.js";

function render({ model, el }) {
  const panel = makePanel();
  const { root, stack, canvas } = panel;
  const badge = document.createElement("div"); // "37%" on a partial map
  badge.className = "sw-mv-partial";
  badge.style.cssText = "position:absolute;top:4px;right:4px;padding:1px 5px;border-radius:3px;"
    + "background:rgba(0,0,0,.6);color:#fff;font:11px sans-serif;pointer-events:none";
  badge.hidden = true;
  stack.append(badge);
  el.appendChild(root);

  let planes = null, base = null, luts = {};
  let cache = new Map(); // prepared values per (sign, clip) of these planes (see render.js renderMap)

  function readPlanes() { planes = decodePlanes(toBytes(model.get("planes")), model.get("meta")); cache = new Map(); }

  function paint() {
    const t0 = performance.now();
    const meta = model.get("meta") || {};
    const opts = readOptions(model);
    const size = model.get("size") || 224;
    stack.style.setProperty("--sw-mv-size", `${size}px`);
    let r = { rgba: null, message: meta.message || "no map" };
    if (planes && !meta.message) r = renderView(planes, opts, luts, model.get("diverging") || [], opts.overlay ? base : null, cache);
    const shown = paintPanel(panel, r, planes ? planes.w : 0, planes ? planes.h : 0, luts, opts.sign);
    const partial = shown && typeof meta.fraction === "number";
    badge.hidden = !partial;
    badge.textContent = partial ? `${Math.floor(100 * meta.fraction)}%` : "";
    if (partial) root.title = `partial map: ${badge.textContent} of the work done`;
    // for tests and tools: what was drawn, how often, and how long it took
    canvas.dataset.paints = String(Number(canvas.dataset.paints || 0) + 1);
    canvas.dataset.options = JSON.stringify(opts);
    canvas.dataset.cmap = shown ? r.cmap : "";
    canvas.dataset.ms = (performance.now() - t0).toFixed(2);
    canvas.dataset.fraction = partial ? String(meta.fraction) : "";
  }

  let queued = false;
  function schedule() { // one paint per frame, however many traits changed together
    if (queued) return;
    queued = true;
    queueMicrotask(() => { queued = false; paint(); });
  }
  const onPlanes = () => { readPlanes(); schedule(); };
  const onBase = () => { base = readBase(model); schedule(); };
  const onLuts = () => { luts = readLuts(model); schedule(); };
  const events = [
    ["change:planes change:meta", onPlanes], ["change:base", onBase], ["change:luts change:choices", onLuts],
    [`${optionEvents(model)} change:size`, schedule],
  ];
  events.push(["change:_dom_classes", syncClasses(model, el)]);
  for (const [names, fn] of events) model.on(names, fn);
  luts = readLuts(model); base = readBase(model); readPlanes(); paint();

  return () => {
    for (const [names, fn] of events) model.off(names, fn);
    root.remove();
  };
}

export default { render };
