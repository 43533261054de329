// The one decoder of raw map planes in the browser: plain ES module, no dependencies.
//
// A raw map travels as two 16-bit planes (saliency_widget/viz/bundle.py): `abs` = max_c |g|
// (uint16) and `sum` = sum_c g (int16), each with one scale s (value = q * s). A single-channel
// map (every CAM and occlusion repeat theirs over the input's channels) carries only its `sum`
// plane: its `abs` plane is |q_sum| * s_abs. Two containers hold them:
//   - the widget's binary traits (js/map_view.js, js/compare_view.js): the planes as they are,
//     little-endian, described by a `meta` {shape, abs, sum, single} (decodePlanes);
//   - the offline page's payload (js/viewer.js): arrays addressed by references {o, n, t, s,
//     shape, f, m}, 16-bit ones filtered (f "sub": each row's differences modulo 2^16, low
//     bytes then high bytes; m "abs": |q| * s of a sum plane's bytes) (decodeRef).
// Python decodes both the same way (RawMap.plane, viz.bundle.decode): the same q * s in float64.

/** Decode one page reference {o, n, t, s, shape, f, m}: uint8 data as stored, 16-bit data as q * s (float64). */
export function decodeRef(buffer, ref) {
  if (ref.t === "u1") return new Uint8Array(buffer, ref.o, ref.n);
  const n = ref.n, out = new Float64Array(n), signed = ref.t === "i2", magnitude = ref.m === "abs";
  const bytes = new Uint8Array(buffer, ref.o, 2 * n);
  if (ref.f === "sub") { // undo the filter: low bytes, then high bytes, of each row's running differences
    const shape = ref.shape || [n], w = shape.length ? shape[shape.length - 1] : 1;
    let acc = 0;
    for (let i = 0; i < n; i++) {
      if (i % w === 0) acc = 0;
      acc = (acc + (bytes[i] | (bytes[n + i] << 8))) & 0xffff;
      const q = signed ? (acc << 16) >> 16 : acc;
      out[i] = (magnitude ? Math.abs(q) : q) * ref.s;
    }
    return out;
  }
  const view = new DataView(buffer, ref.o, 2 * n);
  for (let i = 0; i < n; i++) {
    const q = signed ? view.getInt16(2 * i, true) : view.getUint16(2 * i, true);
    out[i] = (magnitude ? Math.abs(q) : q) * ref.s;
  }
  return out;
}

/** Decode the widget's planes at `offset` of `bytes`: {abs, sum, h, w} as float64 q * scale, or null when there are none. */
export function decodePlanes(bytes, meta, offset = 0) {
  const [h, w] = (meta && meta.shape) || [0, 0];
  const n = h * w, single = !!meta.single;
  if (!n || bytes.length < offset + (single ? 2 : 4) * n) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, (single ? 2 : 4) * n);
  const abs = new Float64Array(n), sum = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (single) { // the sum plane alone: abs = |q| * its own scale
      const q = view.getInt16(2 * i, true);
      abs[i] = Math.abs(q) * meta.abs;
      sum[i] = q * meta.sum;
    } else {
      abs[i] = view.getUint16(2 * i, true) * meta.abs;
      sum[i] = view.getInt16(2 * n + 2 * i, true) * meta.sum;
    }
  }
  return { abs, sum, h, w };
}
