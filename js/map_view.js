// Map panel of the saliency explorer (anywidget front-end module, no build step).
//
// The kernel sends each raw map once, as binary: `planes` holds the `abs` plane (uint16) then
// the `sum` plane (int16), little-endian, `meta` their shape and scales (value = q * scale).
// Every display option (sign, clip, colormap, overlay, alpha) is applied here by the one
// renderer, js/render.js (the offline page's too), so a display-only change is drawn in the
// browser without asking the kernel. The controls drive `sign_index`, `cmap_index`, `clip`,
// `overlay` and `alpha` in the browser (ipywidgets jsdlink).
//
// Model traits (Python class saliency_widget.widget.mapcanvas.MapCanvas):
//   planes   Bytes    abs plane (H*W uint16) + sum plane (H*W int16)
//   meta     {shape: [H, W], abs, sum, message, fraction}   scales; message when the map has none;
//            fraction (0..1) only on a partial map (a batched method still refining it)
//   base     Bytes    the input image, H*W*3 uint8 RGB (for the overlay)
//   luts     Bytes    the colormaps' lookup tables, 256*3 uint8 each, in the order of `cmaps`
//   cmaps, signs, diverging   the names the indices refer to
//   sign_index, cmap_index, clip, overlay, alpha   the display options
//   size     int      CSS size of the square panel (the stylesheet may scale it)

import { colorbarLabels, colorbarRamp, renderView, rgbToRgba } from "./render.js";

/** View a Bytes trait (DataView, ArrayBuffer or typed array) as a Uint8Array without copying. */
function toBytes(value) {
  if (!value) return new Uint8Array(0);
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return new Uint8Array(0);
}

/** Decode the two planes: {abs, sum} as float64 q * scale, or null when there are none. */
export function decodePlanes(bytes, meta) {
  const [h, w] = (meta && meta.shape) || [0, 0];
  const n = h * w;
  if (!n || bytes.length < 4 * n) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, 4 * n);
  const abs = new Float64Array(n), sum = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    abs[i] = view.getUint16(2 * i, true) * meta.abs;
    sum[i] = view.getInt16(2 * n + 2 * i, true) * meta.sum;
  }
  return { abs, sum, h, w };
}

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "sw-mv-root";
  const stack = document.createElement("div");
  stack.className = "sw-mv-stack";
  const canvas = document.createElement("canvas");
  canvas.className = "sw-mv-canvas";
  const msg = document.createElement("div");
  msg.className = "sw-mv-msg";
  const scale = document.createElement("canvas");
  scale.className = "sw-mv-scale";
  scale.width = 256; scale.height = 10;
  const labels = document.createElement("div");
  labels.className = "sw-mv-labels";
  const badge = document.createElement("div"); // "37%" on a partial map
  badge.className = "sw-mv-partial";
  badge.style.cssText = "position:absolute;top:4px;right:4px;padding:1px 5px;border-radius:3px;"
    + "background:rgba(0,0,0,.6);color:#fff;font:11px sans-serif;pointer-events:none";
  badge.hidden = true;
  stack.append(canvas, msg, badge);
  root.append(stack, scale, labels);
  el.appendChild(root);

  let planes = null, base = null, luts = null;

  function readPlanes() { planes = decodePlanes(toBytes(model.get("planes")), model.get("meta")); }
  function readBase() { const b = toBytes(model.get("base")); base = b.length ? rgbToRgba(b) : null; }
  function readLuts() {
    const bytes = toBytes(model.get("luts")), names = model.get("cmaps") || [];
    luts = {};
    names.forEach((name, i) => { luts[name] = bytes.subarray(768 * i, 768 * (i + 1)); });
  }

  function options() {
    const signs = model.get("signs") || [], cmaps = model.get("cmaps") || [];
    return {
      sign: signs[model.get("sign_index")] || "absolute", cmap: cmaps[model.get("cmap_index")] || "magma",
      clip: Number(model.get("clip")), overlay: !!model.get("overlay"), alpha: Number(model.get("alpha")),
    };
  }

  function paint() {
    const t0 = performance.now();
    const meta = model.get("meta") || {};
    const opts = options();
    const size = model.get("size") || 224;
    stack.style.setProperty("--sw-mv-size", `${size}px`);
    let r = { rgba: null, message: meta.message || "no map" };
    if (planes && !meta.message) r = renderView(planes, opts, luts, model.get("diverging") || [], opts.overlay ? base : null);
    const shown = r.rgba !== null;
    canvas.hidden = !shown; msg.hidden = shown;
    scale.style.visibility = shown ? "visible" : "hidden"; labels.style.visibility = shown ? "visible" : "hidden";
    msg.textContent = shown ? "" : r.message || "no map";
    const partial = shown && typeof meta.fraction === "number";
    badge.hidden = !partial;
    badge.textContent = partial ? `${Math.floor(100 * meta.fraction)}%` : "";
    root.title = shown ? (partial ? `partial map: ${badge.textContent} of the work done` : "") : msg.textContent;
    if (shown) {
      if (canvas.width !== planes.w) canvas.width = planes.w;
      if (canvas.height !== planes.h) canvas.height = planes.h;
      canvas.getContext("2d").putImageData(new ImageData(r.rgba, planes.w, planes.h), 0, 0);
      scale.getContext("2d").putImageData(new ImageData(colorbarRamp(luts[r.cmap], 10), 256, 10), 0, 0);
      labels.textContent = "";
      for (const text of colorbarLabels(opts.sign, r.vmax)) {
        const span = document.createElement("span");
        span.textContent = text;
        labels.append(span);
      }
    }
    // for tests and tools: what was drawn, how often, and how long it took
    canvas.dataset.paints = String(Number(canvas.dataset.paints || 0) + 1);
    canvas.dataset.options = JSON.stringify(opts);
    canvas.dataset.cmap = shown ? r.cmap : "";
    canvas.dataset.ms = (performance.now() - t0).toFixed(2);
    canvas.dataset.fraction = partial ? String(meta.fraction) : "";
    root.dataset.message = shown ? "" : msg.textContent;
  }

  let queued = false;
  function schedule() { // one paint per frame, however many traits changed together
    if (queued) return;
    queued = true;
    queueMicrotask(() => { queued = false; paint(); });
  }
  const onPlanes = () => { readPlanes(); schedule(); };
  const onBase = () => { readBase(); schedule(); };
  const onLuts = () => { readLuts(); schedule(); };
  const events = [
    ["change:planes change:meta", onPlanes], ["change:base", onBase], ["change:luts change:cmaps", onLuts],
    ["change:sign_index change:cmap_index change:clip change:overlay change:alpha change:size change:signs change:diverging", schedule],
  ];
  // The widget's CSS classes (e.g. "sw-busy" while a new view computes) on this element: the
  // anywidget view sets them once, so later changes are applied here.
  let classes = [];
  const onClasses = () => {
    const now = model.get("_dom_classes") || [];
    for (const c of classes) if (!now.includes(c)) el.classList.remove(c);
    for (const c of now) el.classList.add(c);
    classes = now.slice();
  };
  events.push(["change:_dom_classes", onClasses]);
  for (const [names, fn] of events) model.on(names, fn);
  onClasses(); readLuts(); readBase(); readPlanes(); paint();

  return () => {
    for (const [names, fn] of events) model.off(names, fn);
    root.remove();
  };
}

export default { render };
