// saliency-widget interactive report viewer: plain ES module, no dependencies, no network.
//
// Inlined into the exported HTML page (saliency_widget/viz/viewer_page.py). It decodes the
// page's payload (one zlib stream, base64) and renders every panel on <canvas> elements with
// the same arithmetic as saliency_widget/viz/render.py (render_map, apply_colormap, overlay,
// draw_box), using the colormap lookup tables exported from Python, so a state renders to the
// same pixels as Python's render of the page's values. All handlers use addEventListener (no
// inline handlers, so the page's strict Content-Security-Policy holds).

export const SIGNS = ["absolute", "positive", "negative", "signed"];
export const CLIPS = [90, 95, 98, 99, 99.5, 99.9, 100];

// ------------------------------------------------------------------ decoding
export async function inflate(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Response(stream).arrayBuffer();
}

// A reference {o, n, t, s, shape}: uint8 data as stored, 16-bit data as q * s (float64).
export function decodeRef(buffer, ref) {
  if (ref.t === "u1") return new Uint8Array(buffer, ref.o, ref.n);
  const view = new DataView(buffer, ref.o, ref.n * 2);
  const out = new Float64Array(ref.n);
  const signed = ref.t === "i2";
  for (let i = 0; i < ref.n; i++) out[i] = (signed ? view.getInt16(2 * i, true) : view.getUint16(2 * i, true)) * ref.s;
  return out;
}

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

// prepare_map on a decoded plane: "abs" (max_c |g|) for sign absolute, "sum" (sum_c g) for the others.
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
  const mag = m.map(Math.abs);
  let vmax = percentile(mag, clip);
  if (vmax <= 0) vmax = mag.reduce((a, b) => Math.max(a, b), 0);
  const lo = sign === "signed" ? -1 : 0;
  return { values: m.map((v) => clamp(v / vmax, lo, 1)), message: null, vmax };
}

export function applyColormap(values, lut) { // -> RGBA bytes
  const out = new Uint8ClampedArray(values.length * 4);
  for (let i = 0; i < values.length; i++) {
    const k = clamp(rint(clamp(values[i], 0, 1) * 255), 0, 255) * 3;
    out.set([lut[k], lut[k + 1], lut[k + 2], 255], 4 * i);
  }
  return out;
}

export function renderMap(plane, opts, luts, diverging) {
  const pm = prepareMap(plane, opts.sign, opts.clip);
  if (pm.values === null) return { rgba: null, message: pm.message, vmax: 0 };
  if (opts.sign === "signed") {
    const use = diverging.includes(opts.cmap) ? opts.cmap : "coolwarm";
    return { rgba: applyColormap(pm.values.map((v) => (v + 1) / 2), luts[use]), weight: pm.values.map(Math.abs), vmax: pm.vmax, cmap: use };
  }
  return { rgba: applyColormap(pm.values, luts[opts.cmap]), weight: pm.values, vmax: pm.vmax, cmap: opts.cmap };
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

export function rgbToRgba(rgb) {
  const n = rgb.length / 3, out = new Uint8ClampedArray(n * 4);
  for (let i = 0; i < n; i++) out.set([rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2], 255], 4 * i);
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

// The rule the widget projects with while `method` is shown.
export function projectionRule(method, hasRelu) {
  if (!hasRelu) return "gradient";
  return ["gradient", "deconvnet", "guided_backprop"].includes(method) ? method : "deconvnet";
}

export function nearestSpot(spots, y, x) {
  let best = 0, bestD = Infinity;
  spots.forEach((s, i) => { const d = (s.p[0] - y) ** 2 + (s.p[1] - x) ** 2; if (d < bestD) { bestD = d; best = i; } });
  return best;
}

// ------------------------------------------------------------------ DOM helpers
function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v; else if (k === "cls") e.className = v; else e.setAttribute(k, v);
  }
  for (const k of kids) if (k) e.append(k);
  return e;
}

function paint(canvas, rgba, h, w) {
  canvas.width = w; canvas.height = h;
  canvas.getContext("2d").putImageData(new ImageData(rgba, w, h), 0, 0);
  canvas.dataset.paints = String(Number(canvas.dataset.paints || 0) + 1);
}

function panel(title, size, panelName) {
  const canvas = el("canvas", { cls: "sw-canvas", "data-panel": panelName, width: "1", height: "1" });
  canvas.style.width = `${size}px`; canvas.style.height = `${size}px`;
  const msg = el("div", { cls: "sw-msg" });
  msg.style.width = `${size}px`; msg.style.height = `${size}px`;
  const caption = el("div", { cls: "sw-caption" });
  const wrap = el("figure", { cls: "sw-panel" }, el("div", { cls: "sw-title", text: title }), el("div", { cls: "sw-stack" }, canvas, msg), caption);
  return { wrap, canvas, msg, caption };
}

function showPanel(p, rgba, h, w, message) {
  p.canvas.hidden = rgba === null; p.msg.hidden = rgba !== null;
  p.msg.textContent = message || "";
  if (rgba !== null) paint(p.canvas, rgba, h, w);
}

// ------------------------------------------------------------------ the viewer
export class Viewer {
  constructor(root, manifest, buffer) {
    this.root = root; this.m = manifest; this.buf = buffer; this.cache = new Map();
    this.luts = {};
    for (const [name, ref] of Object.entries(manifest.cmaps)) this.luts[name] = decodeRef(buffer, ref);
    this.state = { ...manifest.state };
    this.build();
    this.update();
  }

  plane(ref) {
    if (!this.cache.has(ref.o)) this.cache.set(ref.o, decodeRef(this.buf, ref));
    return this.cache.get(ref.o);
  }
  get image() { return this.m.images[this.state.image]; }
  get layer() { return this.image.layers.find((l) => l.key === this.state.layer) || this.image.layers[0]; }
  opts() { return { sign: this.state.sign, clip: Number(this.state.clip), cmap: this.state.cmap }; }

  render(entry) { // a map entry -> {rgba, message, vmax, cmap}
    if (!entry || entry.message) return { rgba: null, message: entry ? entry.message : "not exported" };
    const plane = this.plane(this.state.sign === "absolute" ? entry.abs : entry.sum);
    const r = renderMap(plane, this.opts(), this.luts, this.m.diverging);
    if (r.rgba && this.state.overlay) r.rgba = overlay(this.baseRgba(), r.rgba, Number(this.state.alpha), r.weight);
    return r;
  }
  baseRgba() { return rgbToRgba(decodeRef(this.buf, this.image.input)); }

  set(changes) {
    Object.assign(this.state, changes);
    this.update();
  }

  build() {
    const m = this.m, S = 256;
    this.root.textContent = "";
    this.root.append(el("h1", { text: m.title }));
    this.imageBar = el("div", { cls: "sw-row sw-images" });
    m.images.forEach((img, i) => {
      const b = el("button", { cls: "sw-btn", "data-image": String(i), text: img.name });
      b.addEventListener("click", () => { // same layer if exported for this image, on its most active filter
        const l = img.layers.find((e) => e.key === this.state.layer) || img.layers[img.layers.length - 1];
        this.set({ image: i, target: img.target, layer: l.key, channel: l.channels[l.hi.indexOf(Math.max(...l.hi))], position: 0 });
      });
      this.imageBar.append(b);
    });
    if (m.images.length > 1) this.root.append(this.imageBar);

    this.methodBar = el("div", { cls: "sw-row sw-methods", role: "group", "aria-label": "method" });
    this.pInput = panel("input", S, "input");
    this.pMap = panel("map", S, "map");
    this.scale = el("canvas", { cls: "sw-scale", width: "256", height: "10" });
    this.scaleLabels = el("div", { cls: "sw-scale-labels" });
    this.pMap.wrap.append(this.scale, this.scaleLabels);
    this.chart = el("div", { cls: "sw-chart", role: "group", "aria-label": "class" });
    const controls = el("div", { cls: "sw-row sw-controls" });
    const select = (name, values, label) => {
      const s = el("select", { "data-control": name, "aria-label": label });
      for (const v of values) s.append(el("option", { value: String(v), text: String(v) }));
      s.addEventListener("change", () => this.set({ [name]: name === "clip" ? Number(s.value) : s.value }));
      controls.append(el("label", { text: `${label} ` }, s));
      return s;
    };
    this.ctl = {
      sign: select("sign", SIGNS, "sign"),
      cmap: select("cmap", Object.keys(m.cmaps), "colormap"),
      clip: select("clip", [...new Set([...CLIPS, Number(m.state.clip)])].sort((a, b) => a - b), "clip percentile"),
    };
    this.ctl.overlay = el("input", { type: "checkbox", "data-control": "overlay" });
    this.ctl.overlay.addEventListener("change", () => this.set({ overlay: this.ctl.overlay.checked }));
    this.ctl.alpha = el("input", { type: "range", min: "0", max: "1", step: "0.05", "data-control": "alpha" });
    this.ctl.alpha.addEventListener("input", () => this.set({ alpha: Number(this.ctl.alpha.value) }));
    controls.append(el("label", {}, this.ctl.overlay, " overlay on the input"), el("label", { text: "opacity " }, this.ctl.alpha));

    this.compare = el("div", { cls: "sw-row sw-compare" });
    this.layerBar = el("div", { cls: "sw-row sw-layers", role: "group", "aria-label": "layer" });
    this.filters = el("div", { cls: "sw-filters" });
    this.pFeature = panel("feature map", S, "feature");
    this.marker = el("div", { cls: "sw-marker" });
    this.pFeature.wrap.querySelector(".sw-stack").append(this.marker);
    this.pFeature.canvas.addEventListener("click", (ev) => this.clickActivation(ev));
    this.pProj = panel("projection", S, "projection");

    const section = (title, ...kids) => el("section", { cls: "sw-section" }, el("h2", { text: title }), ...kids);
    this.root.append(
      el("div", { cls: "sw-top" },
        section("Saliency map", this.methodBar, el("div", { cls: "sw-row" }, this.pInput.wrap, this.pMap.wrap), controls),
        section("Class probabilities", el("p", { cls: "sw-hint", text: "click a class to explain it" }), this.chart)),
      section("Compare methods", this.compare),
      section("Feature maps", this.layerBar, el("p", { cls: "sw-hint", text: "click a filter, then an activation (dots: precomputed projections)" }),
        el("div", { cls: "sw-row" }, this.filters, this.pFeature.wrap, this.pProj.wrap)),
      section("Settings and versions", this.settingsTable()),
      el("p", { cls: "sw-foot", text: "made by saliency-widget; this file is self-contained and works offline." }),
    );
  }

  settingsTable() {
    const t = el("table", { cls: "sw-settings" });
    const rows = { ...this.m.settings, ...this.m.versions };
    for (const img of this.m.images) if (img.warnings.length) rows[`warnings (${img.name})`] = img.warnings.join("; ");
    for (const [k, v] of Object.entries(rows)) t.append(el("tr", {}, el("th", { text: k }), el("td", { text: String(v) })));
    return t;
  }

  update() {
    const st = this.state, img = this.image, [h, w] = img.size;
    for (const b of this.imageBar.children) b.classList.toggle("sw-on", Number(b.dataset.image) === st.image);
    for (const k of ["sign", "cmap", "clip"]) this.ctl[k].value = String(st[k]);
    this.ctl.overlay.checked = !!st.overlay; this.ctl.alpha.value = String(st.alpha);
    // methods
    this.methodBar.textContent = "";
    for (const name of img.methods) {
      const entry = img.maps[name][String(st.target)];
      const b = el("button", { cls: "sw-btn", "data-method": name, text: this.m.labels[name] || name, "aria-pressed": String(name === st.method) });
      if (name === st.method) b.classList.add("sw-on");
      if (entry && entry.message) { b.classList.add("sw-off"); b.title = entry.message; }
      b.addEventListener("click", () => this.set({ method: name }));
      this.methodBar.append(b);
    }
    // map + colour scale
    const r = this.render(img.maps[st.method][String(st.target)]);
    showPanel(this.pMap, r.rgba, h, w, r.message);
    this.pMap.wrap.querySelector(".sw-title").textContent = `${this.m.labels[st.method] || st.method} · ${img.labels[String(st.target)]}`;
    this.scale.hidden = r.rgba === null; this.scaleLabels.hidden = r.rgba === null;
    this.pMap.caption.textContent = r.rgba && r.cmap !== st.cmap ? `a signed map needs a diverging colormap: ${r.cmap} instead of ${st.cmap}` : "";
    if (r.rgba) {
      const ramp = new Float64Array(256).map((_, i) => i / 255), row = applyColormap(ramp, this.luts[r.cmap]);
      const strip = new Uint8ClampedArray(256 * 4 * 10);
      for (let y = 0; y < 10; y++) strip.set(row, y * 256 * 4);
      this.scale.getContext("2d").putImageData(new ImageData(strip, 256, 10), 0, 0);
      this.scaleLabels.textContent = "";
      for (const t of colorbarLabels(st.sign, r.vmax)) this.scaleLabels.append(el("span", { text: t }));
    }
    this.updateChart(img);
    this.updateCompare(img);
    this.updateFeatures(img, h, w);
    this.root.dataset.state = JSON.stringify(st);
  }

  updateChart(img) {
    this.chart.textContent = "";
    for (const c of img.chart) {
      const p = img.probs[String(c)], exported = img.classes.includes(c);
      const bar = el("span", { cls: "sw-bar" }); bar.style.width = `${Math.max(1, Math.round(160 * p))}px`;
      const b = el("button", { cls: "sw-class", "data-class": String(c) },
        el("span", { cls: "sw-label", text: img.labels[String(c)] }), bar, el("span", { cls: "sw-p", text: p.toFixed(3) }));
      if (c === this.state.target) b.classList.add("sw-on");
      if (c === img.predicted) b.title = "predicted class";
      if (exported) b.addEventListener("click", () => this.set({ target: c })); else { b.disabled = true; b.title = "maps of this class were not exported"; }
      this.chart.append(b);
    }
  }

  updateCompare(img) {
    this.compare.textContent = "";
    const [h, w] = img.size;
    for (const name of img.methods) {
      const r = this.render(img.maps[name][String(this.state.target)]);
      const p = panel(this.m.labels[name] || name, 112, `compare:${name}`);
      showPanel(p, r.rgba, h, w, r.message);
      p.wrap.classList.add("sw-thumb");
      if (name === this.state.method) p.wrap.classList.add("sw-on");
      p.wrap.addEventListener("click", () => this.set({ method: name }));
      this.compare.append(p.wrap);
    }
  }

  updateFeatures(img, h, w) {
    const st = this.state, layer = this.layer, [, fh, fw] = layer.shape;
    this.layerBar.textContent = "";
    for (const l of img.layers) {
      const b = el("button", { cls: "sw-btn", "data-layer": l.key, text: l.label });
      if (l.key === layer.key) b.classList.add("sw-on");
      b.addEventListener("click", () => this.set({ layer: l.key, channel: l.channels[0], position: 0 }));
      this.layerBar.append(b);
    }
    const feats = decodeRef(this.buf, layer.features), viridis = this.luts.viridis, n = fh * fw;
    const cell = (i) => {
      if (!layer.finite[i]) return new Uint8ClampedArray(n * 4).fill(235).map((v, k) => (k % 4 === 3 ? 255 : v));
      const rgba = new Uint8ClampedArray(n * 4);
      for (let k = 0; k < n; k++) { const j = feats[i * n + k] * 3; rgba.set([viridis[j], viridis[j + 1], viridis[j + 2], 255], 4 * k); }
      return rgba;
    };
    const gridKey = `${st.image}/${layer.key}`;
    if (this.filters.dataset.key !== gridKey) { // rebuilt only for a new layer, so the grid keeps its scroll position
      this.filters.textContent = "";
      this.filters.dataset.key = gridKey;
      layer.channels.forEach((c, k) => {
        const cv = el("canvas", { cls: "sw-filter", "data-channel": String(c), title: `filter ${c}` });
        paint(cv, cell(k), fh, fw);
        cv.addEventListener("click", () => this.set({ channel: c, position: 0 }));
        this.filters.append(el("div", { cls: "sw-fcell" }, cv, el("span", { text: String(c) })));
      });
      const sel = this.filters.querySelector(`[data-channel="${st.channel}"]`);
      if (sel) this.filters.scrollTop = Math.max(0, sel.parentElement.offsetTop - 60);
    }
    for (const cv of this.filters.querySelectorAll("canvas")) cv.classList.toggle("sw-on", Number(cv.dataset.channel) === st.channel);
    const i = Math.max(0, layer.channels.indexOf(st.channel)), spots = layer.projections[i];
    const spot = spots[Math.min(st.position || 0, spots.length - 1)];
    showPanel(this.pFeature, cell(i), fh, fw, null);
    this.pFeature.wrap.querySelector(".sw-title").textContent = `${layer.key} · filter ${layer.channels[i]}`;
    this.marker.textContent = "";
    for (const s of spots) {
      const dot = el("span", { cls: s === spot ? "sw-dot sw-sel" : "sw-dot" });
      dot.style.left = `${((s.p[1] + 0.5) / fw) * 100}%`; dot.style.top = `${((s.p[0] + 0.5) / fh) * 100}%`;
      this.marker.append(dot);
    }
    const [sy, sx] = spots[0].p;
    this.pFeature.caption.textContent = layer.finite[i]
      ? `max ${fmtG(layer.hi[i], 4)} at (${sy}, ${sx})   selected (${spot.p[0]}, ${spot.p[1]}) = ${fmtG(spot.v, 4)}`
      : "feature map contains NaN/Inf";
    const wanted = projectionRule(st.method, img.has_relu), rule = spot.r[wanted] ? wanted : img.rules[0];
    const r = this.render(spot.r[rule]);
    showPanel(this.pProj, r.rgba, h, w, r.message);
    this.pProj.caption.textContent = `${rule} rule` + (rule !== wanted ? ` (the live widget uses the ${wanted} rule with this method; not exported)` : "");
    let base = this.baseRgba();
    if (spot.box) base = drawBox(base, h, w, spot.box);
    showPanel(this.pInput, base, h, w, null);
    this.pInput.caption.textContent = spot.box ? "green: receptive field of the selected activation" : "";
  }

  clickActivation(ev) {
    const layer = this.layer, [, fh, fw] = layer.shape, rect = this.pFeature.canvas.getBoundingClientRect();
    const y = Math.min(fh - 1, Math.floor(((ev.clientY - rect.top) / rect.height) * fh));
    const x = Math.min(fw - 1, Math.floor(((ev.clientX - rect.left) / rect.width) * fw));
    const i = Math.max(0, layer.channels.indexOf(this.state.channel));
    this.set({ position: nearestSpot(layer.projections[i], y, x) });
  }
}

export async function boot(doc = document) {
  for (const root of doc.querySelectorAll(".sw-viewer:not([data-sw-ready])")) {
    root.dataset.swReady = "loading";
    try {
      const manifest = JSON.parse(root.querySelector("script.sw-manifest").textContent);
      const buffer = await inflate(root.querySelector("script.sw-payload").textContent.trim());
      root.swViewer = new Viewer(root, manifest, buffer);
      root.dataset.swReady = "yes";
    } catch (err) {
      root.dataset.swReady = "failed";
      root.append(el("p", { cls: "sw-error", text: `this report could not be shown: ${err && err.message ? err.message : err}` }));
      throw err;
    }
  }
}

boot();
