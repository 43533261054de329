// @ts-check
// Channel grid of saliency-widget (anywidget front-end module, no build step): every filter of
// the current layer as a thumbnail; a click selects that filter.
//
// Model traits (synced by the Python class saliency_widget.widget.channelgrid.ChannelGrid):
//   png       Bytes   PNG atlas: `cols` tiles a row, each th x tw pixels plus a 1 px gap
//   shape     [count, th, tw, cols]
//   selected  int     the selected filter (the explorer's; marked)
//   click     {channel, seq}  written here on a click on a thumbnail
//   key       string  what the atlas shows (image version / layer)
//   tile_px   int     CSS size of a tile's longer side

/** @param {any} v @returns {Uint8Array} */
function bytesOf(v) {
  if (!v) return new Uint8Array(0);
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (v.buffer instanceof ArrayBuffer) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  return new Uint8Array(0);
}

/** @param {{model: any, el: HTMLElement}} props */
function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "sw-cg-root";
  const img = document.createElement("img");
  img.className = "sw-cg-atlas";
  img.alt = "every filter of the layer";
  img.draggable = false;
  const mark = document.createElement("div");
  mark.className = "sw-cg-mark";
  const inner = document.createElement("div");
  inner.className = "sw-cg-inner";
  inner.append(img, mark);
  const info = document.createElement("div");
  info.className = "sw-cg-info";
  root.append(inner, info);
  el.append(root);
  /** @type {string | null} */
  let url = null;

  const geom = () => {
    const [count, th, tw, cols] = model.get("shape");
    const px = model.get("tile_px") / Math.max(th, tw);  // CSS px per atlas pixel
    return { count, th, tw, cols, px, rows: Math.ceil(count / Math.max(cols, 1)) };
  };
  const place = () => {
    const g = geom();
    img.style.width = `${g.cols * (g.tw + 1) * g.px}px`;
    img.style.height = `${g.rows * (g.th + 1) * g.px}px`;
    const s = model.get("selected");
    const ok = s >= 0 && s < g.count;
    mark.hidden = !ok;
    if (ok) {
      mark.style.left = `${(s % g.cols) * (g.tw + 1) * g.px - 2}px`;
      mark.style.top = `${Math.floor(s / g.cols) * (g.th + 1) * g.px - 2}px`;
      mark.style.width = `${g.tw * g.px}px`;
      mark.style.height = `${g.th * g.px}px`;
    }
    info.textContent = `${g.count} filters · selected ${s}`;
    el.dataset.count = String(g.count);
    el.dataset.selected = String(s);
  };
  const load = () => {
    if (url) URL.revokeObjectURL(url);
    const b = bytesOf(model.get("png"));
    url = b.length ? URL.createObjectURL(new Blob([b], { type: "image/png" })) : null;
    if (url) img.src = url; else img.removeAttribute("src");
    place();
  };
  img.addEventListener("click", (ev) => {
    const g = geom(), r = img.getBoundingClientRect();
    const sx = r.width / (g.cols * (g.tw + 1)), sy = r.height / (g.rows * (g.th + 1));
    const col = Math.floor((ev.clientX - r.left) / sx / (g.tw + 1)), row = Math.floor((ev.clientY - r.top) / sy / (g.th + 1));
    const c = row * g.cols + col;
    if (col >= 0 && col < g.cols && c >= 0 && c < g.count) {
      const prev = model.get("click") || {};
      model.set("click", { channel: c, seq: (prev.seq || 0) + 1 });
      model.save_changes();
    }
  });
  img.addEventListener("mousemove", (ev) => {
    const g = geom(), r = img.getBoundingClientRect();
    const col = Math.floor((ev.clientX - r.left) / (r.width / g.cols)), row = Math.floor((ev.clientY - r.top) / (r.height / g.rows));
    const c = row * g.cols + col;
    img.title = c >= 0 && c < g.count ? `filter ${c} (click to select)` : "";
  });
  model.on("change:png", load);
  model.on("change:shape", place);
  model.on("change:selected", place);
  model.on("change:tile_px", place);
  load();
  return () => { if (url) URL.revokeObjectURL(url); };
}

export default { render };
