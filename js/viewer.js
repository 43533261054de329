// saliency-widget interactive report viewer: plain ES module, no dependencies, no network.
//
// Inlined into the exported HTML page (saliency_widget/viz/viewer_page.py) together with the
// one renderer it imports (js/render.js, also the widget's). It decodes the page's payload
// (one zlib stream, base64) and renders every panel on <canvas> elements; what the page may
// offer (signs, clip percentiles, colormaps, each method's projection rule) comes from the
// manifest, decided by the view model (saliency_widget/views). All handlers use addEventListener (no
// inline handlers, so the page's strict Content-Security-Policy holds).

import { colorbarLabels, colorbarRamp, drawBox, fmtG, renderView, rgbToRgba } from "./render.js";
import { decodeRef } from "./planes.js";

export * from "./render.js";
export * from "./planes.js";

// ------------------------------------------------------------------ decoding
export async function inflate(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Response(stream).arrayBuffer();
}

// a PNG stored as bytes in the payload -> a data: URL (the page's CSP allows img-src data: only)
export function pngDataUrl(bytes) {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return `data:image/png;base64,${btoa(bin)}`;
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

  plane(ref) { // a single-channel map's abs and sum planes share their bytes (ref.o): keyed by what is read
    const key = `${ref.o}:${ref.m || ""}`;
    if (!this.cache.has(key)) this.cache.set(key, decodeRef(this.buf, ref));
    return this.cache.get(key);
  }
  get image() { return this.m.images[this.state.image]; }
  get layer() { return this.image.layers.find((l) => l.key === this.state.layer) || this.image.layers[0]; }
  opts() {
    const st = this.state;
    return { sign: st.sign, clip: Number(st.clip), cmap: st.cmap, overlay: !!st.overlay, alpha: Number(st.alpha) };
  }

  render(entry) { // a map entry -> {rgba, message, vmax, cmap}
    if (!entry || entry.message) return { rgba: null, message: entry ? entry.message : "not exported" };
    const absolute = this.state.sign === "absolute"; // decode only the plane the sign reads
    const planes = { abs: absolute ? this.plane(entry.abs) : null, sum: absolute ? null : this.plane(entry.sum) };
    return renderView(planes, this.opts(), this.luts, this.m.diverging, this.state.overlay ? this.baseRgba() : null);
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
      sign: select("sign", m.signs, "sign"),
      cmap: select("cmap", Object.keys(m.cmaps), "colormap"),
      clip: select("clip", [...new Set([...m.clips, Number(m.state.clip)])].sort((a, b) => a - b), "clip percentile"),
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
    // the filter's feature visualization (only when the page carries them: featviz= on export)
    this.fvImg = el("img", { cls: "sw-canvas sw-featviz", "data-panel": "featviz", alt: "" });
    this.fvImg.style.width = `${S}px`; this.fvImg.style.height = `${S}px`;
    this.fvMsg = el("div", { cls: "sw-msg" }); this.fvMsg.style.width = `${S}px`; this.fvMsg.style.height = `${S}px`;
    this.fvTitle = el("div", { cls: "sw-title" });
    this.fvCaption = el("div", { cls: "sw-caption" });
    this.pFeatviz = el("figure", { cls: "sw-panel", "data-featviz": "" }, this.fvTitle, el("div", { cls: "sw-stack" }, this.fvImg, this.fvMsg), this.fvCaption);
    this.pFeatviz.hidden = true;

    const section = (title, ...kids) => el("section", { cls: "sw-section" }, el("h2", { text: title }), ...kids);
    this.root.append(
      el("div", { cls: "sw-top" },
        section("Saliency map", this.methodBar, el("div", { cls: "sw-row" }, this.pInput.wrap, this.pMap.wrap), controls),
        section("Class probabilities", el("p", { cls: "sw-hint", text: "click a class to explain it" }), this.chart)),
      section("Compare methods", this.compare),
      section("Feature maps", this.layerBar, el("p", { cls: "sw-hint", text: "click a filter, then an activation (dots: precomputed projections)" }),
        el("div", { cls: "sw-row" }, this.filters, this.pFeature.wrap, this.pProj.wrap, this.pFeatviz)),
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
      this.scale.getContext("2d").putImageData(new ImageData(colorbarRamp(this.luts[r.cmap], 10), 256, 10), 0, 0);
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
    const wanted = img.projection[st.method], rule = spot.r[wanted] ? wanted : img.rules[0];
    const r = this.render(spot.r[rule]);
    showPanel(this.pProj, r.rgba, h, w, r.message);
    this.pProj.caption.textContent = `${rule} rule` + (rule !== wanted ? ` (the live widget uses the ${wanted} rule with this method; not exported)` : "");
    this.updateFeatviz(layer, i);
    let base = this.baseRgba();
    if (spot.box) base = drawBox(base, h, w, spot.box);
    showPanel(this.pInput, base, h, w, null);
    this.pInput.caption.textContent = spot.box ? "green: receptive field of the selected activation" : "";
  }

  updateFeatviz(layer, i) {
    const fv = this.m.featviz, c = layer.channels[i];
    this.pFeatviz.hidden = !fv || !(layer.featviz || layer.featviz_message);
    if (this.pFeatviz.hidden) return;
    this.fvTitle.textContent = `what excites filter ${c}`;
    const ref = layer.featviz ? layer.featviz[i] : null;
    this.fvImg.hidden = !ref; this.fvMsg.hidden = !!ref;
    this.fvMsg.textContent = ref ? "" : (layer.featviz_message || "not exported");
    const key = ref ? `${ref.o}` : "";
    if (ref && this.fvImg.dataset.ref !== key) { this.fvImg.src = pngDataUrl(decodeRef(this.buf, ref)); this.fvImg.dataset.ref = key; }
    this.fvImg.dataset.channel = String(c);
    this.fvImg.alt = `feature visualization of ${layer.key} filter ${c}`;
    this.fvCaption.textContent = ref ? `the image optimised to excite ${layer.key} filter ${c} (${fv})` : "";
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
