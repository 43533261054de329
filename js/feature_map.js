// @ts-check
// Feature-map canvas of saliency-widget (anywidget front-end module, no build step).
//
// Model traits (all synced by the Python class saliency_widget.widget.canvas.FeatureMapCanvas):
//   png      Bytes    PNG of the feature map, one pixel per activation (binary, never base64)
//   grid     [h, w]   activation grid size (the PNG may be upscaled; clicks map to this grid)
//   marker   [y, x]   highlighted activation, or [] for none
//   caption  string   text under the canvas (rendered as text, never as HTML)
//   size     int      size in pixels of the canvas's longer side (the page's CSS may scale it to the panel)
//   click    {y, x, seq}  written by this view when the user clicks an activation
// Custom messages are used for commands: {type: "cmd", id, cmd} -> reply
// {type: "reply", id, ok, result | error}. Double-click asks Python for "strongest", with
// `after_click`: the seq of the last click this view sent. ipywidgets holds a state update back
// while an earlier one is unanswered, but sends a custom message at once, so the double-click's
// own first click can reach the kernel after the command; Python runs the command only once that
// click has arrived (saliency_widget.widget.canvas). The double-click's second click sends nothing.
// Python -> JS {type: "download", filename, mime} with the file as buffers[0]: the browser
// downloads it (the explorer's "export PNG" button).
//
// Types are JSDoc, checked without a build step:
//   npx -y -p typescript tsc --noEmit --allowJs --checkJs --strict --target es2022 --lib es2022,dom js/*.js

/**
 * The synced traits of the Python class FeatureMapCanvas.
 * @typedef {object} Traits
 * @property {DataView | ArrayBuffer | Uint8Array | null} png  PNG bytes (a DataView from ipywidgets)
 * @property {number[]} grid  [h, w] activation grid size
 * @property {number[]} marker  [y, x] highlighted activation, or []
 * @property {string} caption  text under the canvas
 * @property {number} size  CSS size in pixels of the longer canvas side
 * @property {Click | Record<string, never>} click  last click ({} before the first)
 */

/**
 * A click on activation (y, x); seq counts clicks so a repeat is still a change.
 * @typedef {{y: number, x: number, seq: number}} Click
 */

/**
 * A command to Python (custom message).
 * @typedef {{type: "cmd", id: string, cmd: string, [arg: string]: unknown}} CommandMessage
 */

/**
 * Python's reply to a command: `result` when ok, else `error`.
 * @typedef {{type: "reply", id: string, ok: boolean, result?: unknown, error?: string}} ReplyMessage
 */

/**
 * The part of anywidget's model interface this module uses.
 * @typedef {object} Model
 * @property {<K extends keyof Traits>(key: K) => Traits[K]} get
 * @property {<K extends keyof Traits>(key: K, value: Traits[K]) => void} set
 * @property {() => void} save_changes
 * @property {(event: string, callback: (...args: any[]) => void) => void} on
 * @property {(event: string, callback: (...args: any[]) => void) => void} off
 * @property {(content: CommandMessage) => void} send
 */

/**
 * What anywidget passes to `render`.
 * @typedef {{model: Model, el: HTMLElement}} RenderProps
 */

let nextId = 1;

/**
 * Send a command to Python and resolve with its reply (rejects on error reply / timeout).
 * @param {Model} model  the widget model
 * @param {string} cmd  command name, e.g. "strongest"
 * @param {Record<string, unknown>} [args]  extra fields of the message
 * @param {number} [timeoutMs]  reject after this many milliseconds without a reply
 * @returns {Promise<unknown>}  the reply's `result`
 */
function command(model, cmd, args = {}, timeoutMs = 10000) {
  const id = `fm-${Date.now()}-${nextId++}`;
  return new Promise((resolve, reject) => {
    /** @param {ReplyMessage | undefined} msg */
    const onMsg = (msg) => {
      if (!msg || msg.type !== "reply" || msg.id !== id) return;
      clearTimeout(timer);
      model.off("msg:custom", onMsg);
      if (msg.ok) resolve(msg.result);
      else reject(new Error(msg.error || "command failed"));
    };
    const timer = setTimeout(() => {
      model.off("msg:custom", onMsg);
      reject(new Error(`command ${cmd} timed out`));
    }, timeoutMs);
    model.on("msg:custom", onMsg);
    model.send({ type: "cmd", id, cmd, ...args });
  });
}

/**
 * View whatever ipywidgets gives us for a Bytes trait (DataView, ArrayBuffer, typed array) as a
 * Uint8Array without copying; anything else is empty.
 * @param {unknown} value  the trait value
 * @returns {Uint8Array}
 */
function toBytes(value) {
  if (!value) return new Uint8Array(0);
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  return new Uint8Array(0);
}

/**
 * Draw the feature map into `el` and wire clicks to the model.
 * @param {RenderProps} props
 * @returns {() => void}  cleanup, called by anywidget when the view is removed
 */
function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "sw-fm-root";
  root.style.display = "inline-flex";
  root.style.flexDirection = "column";
  root.style.alignItems = "flex-start";
  const canvas = document.createElement("canvas");
  canvas.className = "sw-fm-canvas";
  canvas.style.cursor = "crosshair";
  canvas.style.imageRendering = "pixelated";
  canvas.style.border = "1px solid #bbb";
  const caption = document.createElement("div");
  caption.className = "sw-fm-caption";
  caption.style.font = "12px monospace";
  // Two lines of fixed height: the caption's parts ("max ... at (y, x)", "selected (y, x) = v")
  // wrap between parts, never inside one, so a narrow (1366 px) panel shows both whole; a part
  // wider than the panel ends in an ellipsis and the full text is the tooltip. The fixed height
  // (the map panel beside it is taller) never pushes the rows below down.
  caption.style.whiteSpace = "normal";
  caption.style.overflow = "hidden";
  caption.style.height = "34px";
  caption.style.lineHeight = "17px";
  caption.style.maxWidth = "100%";
  // as wide as the canvas above it: its text never widens the panel
  caption.style.alignSelf = "stretch";
  caption.style.contain = "inline-size";
  root.append(canvas, caption);
  el.appendChild(root);

  /** @type {ImageBitmap | null} */
  let bitmap = null; // last decoded image
  let drawToken = 0; // guards against an older decode finishing after a newer one
  let disposed = false;

  /** @returns {{gh: number, gw: number, w: number, h: number}} grid size and canvas size in pixels */
  function geometry() {
    const [gh, gw] = model.get("grid") || [1, 1];
    const size = model.get("size") || 256;
    const scale = size / Math.max(gh || 1, gw || 1);
    return { gh: gh || 1, gw: gw || 1, w: Math.max(1, Math.round((gw || 1) * scale)), h: Math.max(1, Math.round((gh || 1) * scale)) };
  }

  function paint() {
    const { gh, gw, w, h } = geometry();
    canvas.dataset.grid = `${gh},${gw}`; // for tests and tools: the activation grid size
    if (canvas.width !== w) canvas.width = w;
    if (canvas.height !== h) canvas.height = h;
    const ctx = canvas.getContext("2d");
    if (!ctx) return;
    ctx.imageSmoothingEnabled = false;
    ctx.fillStyle = "#eee";
    ctx.fillRect(0, 0, w, h);
    if (bitmap) ctx.drawImage(bitmap, 0, 0, w, h);
    const marker = model.get("marker") || [];
    if (marker.length === 2) {
      const cw = w / gw;
      const ch = h / gh;
      ctx.strokeStyle = "#00ff00";
      ctx.lineWidth = 2;
      ctx.strokeRect(marker[1] * cw + 1, marker[0] * ch + 1, Math.max(2, cw - 2), Math.max(2, ch - 2));
    }
  }

  async function decode() {
    const token = ++drawToken;
    const bytes = toBytes(model.get("png"));
    if (bytes.length === 0) {
      bitmap = null;
      paint();
      return;
    }
    try {
      // (ipywidgets' buffers are plain ArrayBuffers, never shared ones, as BlobPart requires)
      const png = new Blob([/** @type {BlobPart} */ (bytes)], { type: "image/png" });
      const bmp = await createImageBitmap(png);
      if (disposed || token !== drawToken) {
        bmp.close?.();
        return;
      }
      bitmap?.close?.();
      bitmap = bmp;
    } catch (err) {
      bitmap = null;
      caption.textContent = caption.title = `cannot decode feature map: ${err}`;
    }
    paint();
    canvas.dataset.paints = String(Number(canvas.dataset.paints || 0) + 1);
  }

  function updateCaption() {
    const text = model.get("caption") || "";
    // parts are separated by two or more spaces; the separators stay, so textContent is the caption
    const pieces = text.split(/(\s{2,})/);
    caption.replaceChildren(
      ...pieces.map((piece, i) => {
        if (i % 2 === 1) return document.createTextNode(piece);
        const part = document.createElement("span");
        part.className = "sw-fm-part";
        part.textContent = piece; // text, never HTML
        Object.assign(part.style, {
          display: "inline-block", maxWidth: "100%", whiteSpace: "nowrap", overflow: "hidden",
          textOverflow: "ellipsis", verticalAlign: "top",
        });
        return part;
      }),
    );
    caption.title = text;
  }

  let lastSeq = 0; // the last click seq this view sent (Python may echo an older click back)

  /** @param {MouseEvent} event */
  function onClick(event) {
    // The second click of a double-click belongs to the double-click (which follows at once):
    // sending it would only queue a state update behind the "strongest" command.
    if (event.detail >= 2) return;
    const { gh, gw } = geometry();
    const rect = canvas.getBoundingClientRect();
    const fx = (event.clientX - rect.left) / Math.max(1, rect.width);
    const fy = (event.clientY - rect.top) / Math.max(1, rect.height);
    const x = Math.min(gw - 1, Math.max(0, Math.floor(fx * gw)));
    const y = Math.min(gh - 1, Math.max(0, Math.floor(fy * gh)));
    /** @type {Partial<Click>} */
    const prev = model.get("click") || {};
    // seq makes a repeated click on the same cell still a change Python observes.
    lastSeq = Math.max(prev.seq || 0, lastSeq) + 1;
    model.set("click", { y, x, seq: lastSeq });
    model.save_changes();
  }

  /** @param {MouseEvent} event */
  async function onDblClick(event) {
    event.preventDefault();
    try {
      /** @type {Partial<Click>} */
      const prev = model.get("click") || {};
      await command(model, "strongest", { after_click: Math.max(prev.seq || 0, lastSeq) });
    } catch (err) {
      caption.textContent = caption.title = `error: ${err instanceof Error ? err.message : err}`;
    }
  }

  /**
   * Save a file Python sent (a download message with the bytes as its first buffer).
   * @param {{type?: string, filename?: string, mime?: string} | undefined} msg
   * @param {unknown[]} [buffers]
   */
  function onCustom(msg, buffers) {
    if (!msg || msg.type !== "download") return;
    const bytes = toBytes(buffers && buffers[0]);
    const blob = new Blob([/** @type {BlobPart} */ (bytes)], { type: msg.mime || "application/octet-stream" });
    const url = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = url;
    a.download = msg.filename || "download";
    a.className = "sw-download-link";
    a.style.display = "none";
    root.append(a);
    a.click();
    setTimeout(() => {
      URL.revokeObjectURL(url);
      a.remove();
    }, 1000);
  }

  const onPng = () => decode();
  const onGeometry = () => paint();
  canvas.addEventListener("click", onClick);
  canvas.addEventListener("dblclick", onDblClick);
  model.on("change:png", onPng);
  model.on("change:grid", onGeometry);
  model.on("change:size", onGeometry);
  model.on("change:marker", onGeometry);
  model.on("change:caption", updateCaption);
  model.on("msg:custom", onCustom);
  updateCaption();
  paint();
  decode();

  // Cleanup: anywidget calls this when the view is removed (cell cleared / re-rendered).
  return () => {
    disposed = true;
    canvas.removeEventListener("click", onClick);
    canvas.removeEventListener("dblclick", onDblClick);
    model.off("change:png", onPng);
    model.off("change:grid", onGeometry);
    model.off("change:size", onGeometry);
    model.off("change:marker", onGeometry);
    model.off("change:caption", updateCaption);
    model.off("msg:custom", onCustom);
    bitmap?.close?.();
    bitmap = null;
    root.remove();
  };
}

export default { render };
