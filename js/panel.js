// What every map panel of the explorer shares (anywidget front-end helpers, no build step):
// reading binary traits (their planes are decoded by js/planes.js), reading the display options
// from the traits the Python side generated from the options' specs, and drawing one map with
// its colour scale. The pixels themselves come from the one renderer, js/render.js.
//
// Traits read (Python: saliency_widget.widget.mapcanvas.DisplayCanvas):
//   option_specs  [{name, kind, trait}]  every display option and the trait holding it
//   choices       {name: [names]}        what a choice's index refers to (choices.cmap: the order of luts)
//   luts          Bytes                  256*3 uint8 per colormap, in the order of choices.cmap
//   base          Bytes                  the input image, H*W*3 uint8 RGB (for the overlay)
//   diverging     [names]                colormaps a signed map keeps

import { colorbarLabels, colorbarRamp, rgbToRgba } from "./render.js";

/** View a Bytes trait (DataView, ArrayBuffer or typed array) as a Uint8Array without copying. */
export function toBytes(value) {
  if (!value) return new Uint8Array(0);
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return new Uint8Array(0);
}

/** The display options as render.js takes them ({sign, clip, cmap, overlay, alpha, ...}), from the spec'd traits. */
export function readOptions(model) {
  const out = {}, choices = model.get("choices") || {};
  for (const s of model.get("option_specs") || []) {
    const v = model.get(s.trait);
    if (s.kind === "choice") out[s.name] = (choices[s.name] || [])[v] ?? (choices[s.name] || [])[0];
    else if (s.kind === "bool") out[s.name] = !!v;
    else out[s.name] = Number(v);
  }
  return out;
}

/** The change events of every display option's trait (and of what they are read through). */
export function optionEvents(model) {
  return [...(model.get("option_specs") || []).map((s) => `change:${s.trait}`), "change:choices", "change:diverging"].join(" ");
}

/** {cmap name: its 768-byte LUT}. */
export function readLuts(model) {
  const bytes = toBytes(model.get("luts")), names = (model.get("choices") || {}).cmap || [];
  const luts = {};
  names.forEach((name, i) => { luts[name] = bytes.subarray(768 * i, 768 * (i + 1)); });
  return luts;
}

/** The input image as RGBA, or null. */
export function readBase(model) {
  const b = toBytes(model.get("base"));
  return b.length ? rgbToRgba(b) : null;
}

/** The elements of one map panel: a canvas (or its message) over a colour scale with its labels. */
export function makePanel() {
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
  stack.append(canvas, msg);
  root.append(stack, scale, labels);
  return { root, stack, canvas, msg, scale, labels };
}

/** Show render.js's result `r` ({rgba, message, vmax, cmap}) of a w x h map in `panel`; true when a map shows. */
export function paintPanel(panel, r, w, h, luts, sign) {
  const { root, canvas, msg, scale, labels } = panel;
  const shown = r.rgba !== null;
  canvas.hidden = !shown; msg.hidden = shown;
  scale.style.visibility = shown ? "visible" : "hidden"; labels.style.visibility = shown ? "visible" : "hidden";
  msg.textContent = shown ? "" : r.message || "no map";
  root.title = shown ? "" : msg.textContent;
  if (shown) {
    if (canvas.width !== w) canvas.width = w;
    if (canvas.height !== h) canvas.height = h;
    canvas.getContext("2d").putImageData(new ImageData(r.rgba, w, h), 0, 0);
    scale.getContext("2d").putImageData(new ImageData(colorbarRamp(luts[r.cmap], 10), 256, 10), 0, 0);
    labels.textContent = "";
    for (const text of colorbarLabels(sign, r.vmax)) {
      const span = document.createElement("span");
      span.textContent = text;
      labels.append(span);
    }
  }
  root.dataset.message = shown ? "" : msg.textContent;
  return shown;
}

// The widget's CSS classes (e.g. "sw-busy" while a new view computes) on ``el``: the anywidget
// view sets them once, so later changes are applied here. Returns the listener, already run once.
export function syncClasses(model, el) {
  let classes = [];
  const onClasses = () => {
    const now = model.get("_dom_classes") || [];
    for (const c of classes) if (!now.includes(c)) el.classList.remove(c);
    for (const c of now) el.classList.add(c);
    classes = now.slice();
  };
  onClasses();
  return onClasses;
}
