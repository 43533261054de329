"""Odd but valid images (16-bit, grayscale, RGBA, CMYK, palette, 1x1, animated GIF, float arrays, ...)
work in the explorer, set from Python or uploaded: converted to RGB, each gives a map."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from saliency_widget.viz import render as R
from saliency_widget.widget import Explorer
from tests.helpers import (
    SIDE,
    encode,
    rgb_image,
    settle,
    small_explorer,
    to_tensor,
    upload,
)


def png16() -> bytes:
    a = (np.random.RandomState(0).rand(SIDE, SIDE) * 65535).astype(np.uint16)
    img = Image.fromarray(a)
    assert img.mode.startswith("I;16") or img.mode == "I"
    return encode(img)


def gif_animation() -> bytes:
    a, b = rgb_image(1), rgb_image(2)
    return encode(a, "GIF", save_all=True, append_images=[b], duration=100, loop=0)


@pytest.fixture
def w() -> Iterator[Explorer]:
    widget = small_explorer()
    yield widget
    widget.close()


# (id, make bytes or image): odd but valid images, converted to RGB; each must give a map.
ODD_IMAGES: list[tuple[str, Callable[[], Any]]] = [
    ("png-16-bit", png16),
    ("png-grayscale", lambda: encode(rgb_image(3).convert("L"))),
    ("png-grayscale-alpha", lambda: encode(rgb_image(3).convert("LA"))),
    ("png-rgba", lambda: encode(rgb_image(3).convert("RGBA"))),
    ("png-palette", lambda: encode(rgb_image(3).convert("P"))),
    ("png-1-bit", lambda: encode(rgb_image(3).convert("1"))),
    ("png-1x1", lambda: encode(Image.new("RGB", (1, 1), (200, 30, 30)))),
    ("jpeg-cmyk", lambda: encode(rgb_image(3).convert("CMYK"), "JPEG")),
    ("jpeg-grayscale", lambda: encode(rgb_image(3).convert("L"), "JPEG")),
    ("gif-animation", gif_animation),
    ("bmp", lambda: encode(rgb_image(3), "BMP")),
    ("tiff-float", lambda: encode(rgb_image(3).convert("F"), "TIFF")),
    ("pil-cmyk-object", lambda: rgb_image(3).convert("CMYK")),
    ("array-grayscale-float", lambda: np.random.RandomState(0).rand(SIDE, SIDE).astype(np.float32)),
    ("array-rgba-uint8", lambda: np.asarray(rgb_image(3).convert("RGBA"))),
    ("array-hw1", lambda: np.asarray(rgb_image(3).convert("L"))[..., None]),
    ("tensor-requires-grad", lambda: to_tensor(rgb_image(3)).requires_grad_(True)),
]


@pytest.mark.parametrize("make", [c[1] for c in ODD_IMAGES], ids=[c[0] for c in ODD_IMAGES])
def test_odd_but_valid_images_work(w: Explorer, make: Callable[[], Any]) -> None:
    image = make()
    kept = image.detach().clone() if isinstance(image, torch.Tensor) else None
    n = w.computations
    w.set_image(image)
    settle(w)
    assert w.computations > n and w.render_log[-1].error is None, w.status
    assert not w.status.startswith("error")
    for panel in ("input", "map", "feature"):
        assert w.images[panel][:8] == b"\x89PNG\r\n\x1a\n", panel
    assert w.messages.get("map") is None and not R.is_blank(R.from_png(w.images["map"]))
    if kept is not None:  # the user's tensor is neither modified nor given a .grad
        torch.testing.assert_close(image.detach(), kept, rtol=0, atol=0)
        assert image.grad is None and image.requires_grad


@pytest.mark.parametrize("make", [c[1] for c in ODD_IMAGES[:10]], ids=[c[0] for c in ODD_IMAGES[:10]])
def test_odd_but_valid_uploads_work(w: Explorer, make: Callable[[], bytes]) -> None:
    n = w.computations
    upload(w, make(), name="odd.png")
    settle(w)
    assert w.computations > n and w.render_log[-1].error is None, w.status
    assert w.messages.get("map") is None and not R.is_blank(R.from_png(w.images["map"]))
    assert w.inputs.source == "upload odd.png"
