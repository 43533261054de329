// The one renderer of saliency-widget in the browser: plain ES module, no dependencies.
//
// Applies sign, clip, colormap, overlay and alpha to a raw map with the same arithmetic as
// saliency_widget/viz/render.py (prepare_map, render_map, apply_colormap, overlay, draw_box),
// using the colormap lookup tables exported from Python, so Python, the widget's front end
// (js/map_view.js) and the offline page (js/viewer.js) give the same pixels.
//
// A raw map travels as two 16-bit planes (saliency_widget/viz/bundle.py), decoded by the one
// decoder js/planes.js: `abs` = max_c |g| and `sum` = sum_c g, as float64. Sign "absolute"
// reads `abs`, the other signs read `sum`.

// ------------------------------------------------------------------ render.py, line by line
export function rint(x) { // numpy's rint: halves round to even
  const r = Math.round(x);
  return (Math.abs(x % 1) === 0.5 && r % 2 !== 0) ? r - 1 : r;
}
const clamp = (v, lo, hi) => (v < lo ? lo : (v > hi ? hi : v));

export function percentile(values, p) { // numpy.percentile, method "linear"
  const a = Float64Array.from(values).sort();
  const n = a.length, q = p / 100, vi = (n - 1) * q;
  let prev = Math.floor(vi), next = prev + 1;
  if (vi >= n - 1) { prev = n - 1; next = n - 1; }
  if (vi < 0) { prev = 0; next = 0; }
  const x0 = a[prev], x1 = a[next], gamma = vi - Math.floor(vi), d = x1 - x0;
  return gamma >= 0.5 ? x1 - d * (1 - gamma) : x0 + d * gamma;
}

// prepare_map on a decoded plane ("abs" for sign absolute, "sum" for the others).
export function prepareMap(plane, sign, clip) {
  const n = plane.length, m = new Float64Array(n);
  let any = false;
  for (let i = 0; i < n; i++) {
    const v = plane[i];
    m[i] = sign === "absolute" ? Math.abs(v) : sign === "positive" ? Math.max(v, 0) : sign === "negative" ? Math.max(-v, 0) : v;
    if (m[i] !== 0) any = true;
  }
  if (!any) {
    const what = { positive: "positive part", negative: "negative part" }[sign] || "map";
    return { values: null, message: `the ${what} is all zeros; nothing to show`, vmax: 0 };
  }
  let flat = n > 1;
  for (let i = 1; i < n && flat; i++) if (m[i] !== m[0]) flat = false;
  if (flat) { // one flat colour would look like a map (render.py prepare_map)
    const what = { positive: "positive part", negative: "negative part", absolute: "map's magnitude" }[sign] || "map";
    return { values: null, message: `the ${what} is the same at every pixel; nothing to show`, vmax: 0 };
  }
  const mag = m.map(Math.abs);
  let vmax = percentile(mag, clip);
  if (vmax <= 0) vmax = mag.reduce((a, b) => Math.max(a, b), 0);
  const lo = sign === "signed" ? -1 : 0;
  return { values: m.map((v) => clamp(v / vmax, lo, 1)), message: null, vmax };
}

// The LUT row of a value in [0, 1] (apply_colormap: rint(clip(v, 0, 1) * 255)).
export function lutIndex(v) {
  return clamp(rint(clamp(v, 0, 1) * 255), 0, 255);
}

export function applyColormap(values, lut) { // -> RGBA bytes
  const out = new Uint8ClampedArray(values.length * 4);
  for (let i = 0; i < values.length; i++) {
    const k = lutIndex(values[i]) * 3;
    out[4 * i] = lut[k]; out[4 * i + 1] = lut[k + 1]; out[4 * i + 2] = lut[k + 2]; out[4 * i + 3] = 255;
  }
  return out;
}

// The colormap a sign draws with: a signed map needs a diverging one (coolwarm otherwise).
export function shownCmap(sign, cmap, diverging) {
  return sign === "signed" && !diverging.includes(cmap) ? "coolwarm" : cmap;
}

// `cache` (optional, a Map owned by the caller and emptied when the plane changes) keeps
// prepareMap's result per (sign, clip): a colormap, overlay or alpha change then skips the
// percentile's sort and gives the same pixels.
export function renderMap(plane, opts, luts, diverging, cache) {
  const key = `${opts.sign}|${opts.clip}`;
  let pm = cache ? cache.get(key) : undefined;
  if (pm === undefined) {
    pm = prepareMap(plane, opts.sign, opts.clip);
    if (cache) {
      if (cache.size >= 8) cache.delete(cache.keys().next().value);
      cache.set(key, pm);
    }
  }
  if (pm.values === null) return { rgba: null, message: pm.message, vmax: 0 };
  const use = shownCmap(opts.sign, opts.cmap, diverging);
  if (opts.sign === "signed") {
    return { rgba: applyColormap(pm.values.map((v) => (v + 1) / 2), luts[use]), weight: pm.values.map(Math.abs), vmax: pm.vmax, cmap: use };
  }
  return { rgba: applyColormap(pm.values, luts[use]), weight: pm.values, vmax: pm.vmax, cmap: use };
}

export function overlay(baseRgba, heatRgba, alpha, weight) {
  const a = clamp(alpha, 0, 1), out = new Uint8ClampedArray(baseRgba.length);
  for (let i = 0; i < weight.length; i++) {
    const w = a * clamp(weight[i], 0, 1);
    for (let c = 0; c < 3; c++) out[4 * i + c] = clamp(rint(baseRgba[4 * i + c] * (1 - w) + heatRgba[4 * i + c] * w), 0, 255);
    out[4 * i + 3] = 255;
  }
  return out;
}

// A raw map's planes {abs, sum} (decoded, float64) to RGBA with every display option:
// {rgba, message, vmax, cmap}. `base` (RGBA of the input, same size) is needed for overlay;
// `cache`: see renderMap.
export function renderView(planes, opts, luts, diverging, base, cache) {
  const r = renderMap(opts.sign === "absolute" ? planes.abs : planes.sum, opts, luts, diverging, cache);
  if (r.rgba && opts.overlay && base && base.length === r.rgba.length) r.rgba = overlay(base, r.rgba, Number(opts.alpha), r.weight);
  return r;
}

export function rgbToRgba(rgb) {
  const n = rgb.length / 3, out = new Uint8ClampedArray(n * 4);
  for (let i = 0; i < n; i++) { out[4 * i] = rgb[3 * i]; out[4 * i + 1] = rgb[3 * i + 1]; out[4 * i + 2] = rgb[3 * i + 2]; out[4 * i + 3] = 255; }
  return out;
}

export function drawBox(rgba, h, w, box, color = [0, 255, 0], width = 2) { // draw_box, half-open (y0, x0, y1, x1)
  const out = new Uint8ClampedArray(rgba);
  const y0 = Math.max(0, box[0]), x0 = Math.max(0, box[1]), y1 = Math.min(h, box[2]), x1 = Math.min(w, box[3]);
  if (y1 <= y0 || x1 <= x0) return out;
  const fill = (ya, yb, xa, xb) => {
    for (let y = ya; y < yb; y++) for (let x = xa; x < xb; x++) out.set([...color, 255], 4 * (y * w + x));
  };
  fill(y0, Math.min(y0 + width, y1), x0, x1);
  fill(Math.max(y1 - width, y0), y1, x0, x1);
  fill(y0, y1, x0, Math.min(x0 + width, x1));
  fill(y0, y1, Math.max(x1 - width, x0), x1);
  return out;
}

// ------------------------------------------------------------------ colour scale
export function fmtG(v, p = 3) { // Python's f"{v:.{p}g}"
  if (v === 0 || !Number.isFinite(v)) return String(v);
  const [mant, e] = v.toExponential(p - 1).split("e");
  const exp = Number(e);
  const strip = (s) => (s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s);
  if (exp < -4 || exp >= p) return `${strip(mant)}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  return strip(v.toFixed(Math.max(0, p - 1 - exp)));
}

export function colorbarLabels(sign, vmax) {
  const v = fmtG(vmax, 3);
  return { absolute: ["0", "|value|", v], positive: ["0", "positive part", v], negative: ["0", "negative part", `-${v}`], signed: [`-${v}`, "0", `+${v}`] }[sign];
}

// The colour ramp of `lut` as `height` rows of 256 RGBA pixels.
export function colorbarRamp(lut, height = 10) {
  const ramp = new Float64Array(256).map((_, i) => i / 255), row = applyColormap(ramp, lut);
  const strip = new Uint8ClampedArray(256 * 4 * height);
  for (let y = 0; y < height; y++) strip.set(row, y * 256 * 4);
  return strip;
}
