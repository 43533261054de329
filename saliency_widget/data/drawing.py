"""Drawing primitives of the shapes scenes: backgrounds, clutter, object outlines and masks, placement.

Pure numpy + PIL; every random choice comes from the generator passed in, so
:func:`saliency_widget.data.shapes.make_scene` stays deterministic.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["background", "contrasting_color", "draw_clutter", "object_mask", "outline", "place", "random_color", "smooth_noise"]


def smooth_noise(rng: np.random.Generator, size: int, cells: int, channels: int) -> np.ndarray:
    """Random ``(cells, cells, channels)`` values bicubically upsampled to ``(size, size, channels)`` in [0, 1]."""
    grid = rng.integers(0, 256, size=(cells, cells, channels), dtype=np.uint8)
    mode = "RGB" if channels == 3 else "L"
    img = Image.fromarray(grid if channels == 3 else grid[..., 0], mode).resize((size, size), Image.Resampling.BICUBIC)
    out = np.asarray(img, dtype=np.float32) / 255.0
    return out if channels == 3 else out[..., None]


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A ``(size, size, 3)`` float32 background in [0, 255].

    Three families so that no single colour statistic identifies the background:
    photo-like smooth colour fields, oriented gratings / plaids, and two-colour noise
    textures. All get a little pixel noise, like a camera.
    """
    kind = rng.integers(3)
    if kind == 0:  # photo-like: large smooth colour regions plus mid-frequency detail
        base = smooth_noise(rng, size, int(rng.integers(2, 6)), 3)
        detail = smooth_noise(rng, size, int(rng.integers(8, 20)), 3) - 0.5
        img = np.float32(255.0) * np.clip(base + np.float32(rng.uniform(0.1, 0.4)) * detail, 0.0, 1.0)
    else:
        c1 = rng.uniform(0, 255, 3).astype(np.float32)
        c2 = rng.uniform(0, 255, 3).astype(np.float32)
        if kind == 1:  # gratings: one or two oriented sinusoids (stripes or a plaid)
            coord = np.arange(size, dtype=np.float32) / np.float32(size)
            t = np.ones((size, size), np.float32)
            for _ in range(int(rng.integers(1, 3))):
                phi = rng.uniform(0, math.pi)
                freq = 2 * math.pi * rng.uniform(2.0, 14.0)
                # separable phase: row term (y) plus column term (x), broadcast to (size, size)
                phase = (
                    np.float32(freq * math.sin(phi)) * coord[:, None]
                    + np.float32(freq * math.cos(phi)) * coord[None, :]
                )
                t *= 0.5 + 0.5 * np.sin(phase + np.float32(rng.uniform(0, 2 * math.pi)))
        else:  # mottled two-colour noise texture
            t = smooth_noise(rng, size, int(rng.integers(size // 16, size // 4 + 1)), 1)[..., 0]
        img = c1 + (c2 - c1) * t[..., None]
    # uniform rather than Gaussian sensor noise: several times cheaper to draw, looks the same
    img = img + np.float32(rng.uniform(0.0, 30.0)) * (rng.random(img.shape, dtype=np.float32) - np.float32(0.5))
    return np.clip(img, 0.0, 255.0, out=img)


def random_color(rng: np.random.Generator) -> tuple[int, int, int]:
    """A uniformly random RGB colour."""
    r, g, b = rng.integers(0, 256, size=3)
    return int(r), int(g), int(b)


def draw_clutter(rng: np.random.Generator, draw: ImageDraw.ImageDraw, size: int) -> None:
    """Lines, small blobs and irregular 4-7-gons in random colours.

    Clutter is smaller than any object and never a regular triangle, square, cross, star
    or ring, so the scene's class stays unambiguous while the network still has to ignore
    strong edges that are not the object.
    """
    for _ in range(int(rng.integers(3, 13))):
        kind = rng.integers(3)
        color = random_color(rng)
        if kind == 0:
            x0, y0, x1, y1 = (float(v) for v in rng.uniform(-0.1 * size, 1.1 * size, 4))
            draw.line([(x0, y0), (x1, y1)], fill=color, width=int(rng.integers(1, max(2, size // 40) + 1)))
        elif kind == 1:
            cx, cy = (float(v) for v in rng.uniform(0, size, 2))
            rx, ry = (float(v) for v in rng.uniform(0.015 * size, 0.075 * size, 2))
            draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=color)
        else:
            cx, cy = (float(v) for v in rng.uniform(0, size, 2))
            n = int(rng.integers(4, 8))
            ang = np.sort(rng.uniform(0, 2 * math.pi, n))
            rad = rng.uniform(0.03 * size, 0.10 * size, n)
            draw.polygon(
                [(cx + r * math.cos(a), cy + r * math.sin(a)) for a, r in zip(ang, rad, strict=True)], fill=color
            )


# --------------------------------------------------------------------------------------
# objects


def _regular(n: int, r: float, phase: float = 0.0) -> np.ndarray:
    a = phase + 2 * math.pi * np.arange(n) / n
    return r * np.stack([np.cos(a), np.sin(a)], axis=1)


def outline(name: str, r: float) -> np.ndarray:
    """Polygon vertices ``(V, 2)`` of a shape with circumradius ``r`` centred at 0 (not rotated).

    Circles and rings are handled separately (PIL ellipses); this covers the polygons.
    """
    if name == "square":
        return _regular(4, r, math.pi / 4)
    if name == "triangle":
        return _regular(3, r, -math.pi / 2)
    if name == "star":
        outer = _regular(5, r, -math.pi / 2)
        inner = _regular(5, 0.42 * r, -math.pi / 2 + math.pi / 5)
        return np.stack([outer, inner], axis=1).reshape(10, 2)
    if name == "cross":
        w = 0.32 * r  # half-width of the arms
        pts = [
            (w, -r),
            (w, -w),
            (r, -w),
            (r, w),
            (w, w),
            (w, r),
            (-w, r),
            (-w, w),
            (-r, w),
            (-r, -w),
            (-w, -w),
            (-w, -r),
        ]
        return np.asarray(pts, dtype=np.float64)
    raise AssertionError(f"no polygon for {name!r}")  # internal: callers pass polygon classes only


def object_mask(name: str, size: int, cx: float, cy: float, r: float, theta: float) -> np.ndarray:
    """``(size, size)`` bool mask of one object of class ``name``, centred at ``(cx, cy)``, circumradius ``r``, rotated by ``theta``."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    if name in ("circle", "ring"):
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        if name == "ring":  # punch the hole: the background shows through it
            ri = 0.55 * r
            draw.ellipse([cx - ri, cy - ri, cx + ri, cy + ri], fill=0)
    else:
        c, s = math.cos(theta), math.sin(theta)
        pts = outline(name, r) @ np.array([[c, s], [-s, c]])
        draw.polygon([(cx + float(x), cy + float(y)) for x, y in pts], fill=255)
    return np.asarray(canvas) > 127


def place(rng: np.random.Generator, size: int, n_objects: int) -> list[tuple[float, float, float]]:
    """Centres and radii ``(cx, cy, r)`` of non-overlapping objects fully inside the image."""
    lo, hi = (0.14, 0.30) if n_objects == 1 else (0.11, 0.21)
    margin = 2.0
    while True:  # rejection sampling; the shrink below guarantees termination
        placed: list[tuple[float, float, float]] = []
        for _ in range(50 * n_objects):
            r = float(rng.uniform(lo, hi)) * size
            cx, cy = (float(v) for v in rng.uniform(r + margin, size - r - margin, 2))
            if all(math.hypot(cx - px, cy - py) > r + pr + margin for px, py, pr in placed):
                placed.append((cx, cy, r))
                if len(placed) == n_objects:
                    return placed
        lo, hi = 0.9 * lo, 0.9 * hi


def contrasting_color(rng: np.random.Generator, region: np.ndarray) -> tuple[int, int, int]:
    """Of a few random colours, the one farthest from the mean colour of ``region`` ``(h, w, 3)``.

    Random colours alone would sometimes vanish into the background; this keeps colour
    random while making the object visible in practically every scene.
    """
    mean = region.reshape(-1, 3).mean(axis=0)
    cands = rng.integers(0, 256, size=(6, 3))
    best = cands[int(np.argmax(np.linalg.norm(cands - mean, axis=1)))]
    return int(best[0]), int(best[1]), int(best[2])
