"""Images read rightly: 16-bit scaled by their range, EXIF orientation applied, elongated images refused cheaply.

:func:`saliency_widget.viz.images.to_pil` / :func:`to_model_input` are the one decoding path of
the widget, the report and the CLI.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from saliency_widget.errors import InputError
from saliency_widget.models.shapes_cnn import SHAPES_WEIGHTS
from saliency_widget.viz.images import MAX_ASPECT_RATIO, to_model_input, to_pil
from tests.helpers import REPO_ROOT, encode


def plain_transform(img: Image.Image) -> torch.Tensor:
    """No resize, no normalisation: the model input is the RGB image in [0, 1], ``(3, H, W)``."""
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)


# 16-bit grey ramp 0, 257, ..., 65535 (256 steps of 257 = 65535 / 255): scaled by the range,
# step k becomes exactly k / 255 in the model input (clipped at 255 it was 1.0 from k = 1 on).
RAMP16 = (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)
RAMP_EXPECTED = torch.arange(256, dtype=torch.float32).view(16, 16).div(255.0).expand(3, 16, 16)


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(lambda: encode(Image.fromarray(RAMP16)), id="png-bytes-I;16"),
        pytest.param(lambda: Image.fromarray(RAMP16), id="pil-I;16"),
        pytest.param(lambda: RAMP16.copy(), id="uint16-array"),
        pytest.param(lambda: np.stack([RAMP16] * 3, axis=-1), id="uint16-array-rgb"),
    ],
)
def test_16bit_ramp_is_scaled_by_its_range(source: object) -> None:
    src = source()  # type: ignore[operator]
    if isinstance(src, bytes):
        assert Image.open(__import__("io").BytesIO(src)).mode == "I;16"  # the file really is 16-bit
    x = to_model_input(src, plain_transform)
    assert_close(x, RAMP_EXPECTED, rtol=0, atol=1e-6)


def test_16bit_odd_values_round_to_nearest() -> None:
    # 128 * 255 / 65535 = 0.498 -> 0; 129 * 255 / 65535 = 0.502 -> 1; 65535 -> 255
    a = np.array([[128, 129, 65535]], dtype=np.uint16)
    assert np.asarray(to_pil(a))[0, :, 0].tolist() == [0, 1, 255]


def test_8bit_and_float_arrays_unchanged() -> None:
    assert np.asarray(to_pil(np.array([[0, 7, 255]], dtype=np.uint8)))[0, :, 0].tolist() == [0, 7, 255]
    assert np.asarray(to_pil(np.array([[0.0, 0.5, 1.0]])))[0, :, 0].tolist() == [0, 127, 255]


def exif_jpeg(orientation: int) -> tuple[bytes, np.ndarray]:
    """A 40 wide x 20 high JPEG stored sideways with EXIF ``orientation``, and its stored pixels."""
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20] = (230, 20, 20)  # left half red, right half blue
    a[:, 20:] = (20, 20, 230)
    a[:5, :5] = (255, 255, 255)  # white mark at the stored top-left
    img = Image.fromarray(a)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(img, "JPEG", exif=exif.tobytes(), quality=95), a


@pytest.mark.parametrize(
    ("orientation", "upright"),
    [
        (1, lambda a: a),
        (3, lambda a: np.rot90(a, 2)),
        (6, lambda a: np.rot90(a, -1)),  # "rotate 90 degrees clockwise to display": phone portrait
        (8, lambda a: np.rot90(a, 1)),
    ],
)
def test_exif_orientation_is_applied(orientation: int, upright: object) -> None:
    data, stored = exif_jpeg(orientation)
    want = upright(stored)  # type: ignore[operator]
    got = np.asarray(to_pil(data))
    assert got.shape == want.shape
    # JPEG is lossy: compare with a tolerance far below the red/blue/white contrast
    assert np.abs(got.astype(int) - want.astype(int)).mean() < 8


def test_exif_orientation_applied_to_opened_pil_image(tmp_path: object) -> None:
    data, stored = exif_jpeg(6)
    path = tmp_path / "portrait.jpg"  # type: ignore[operator]
    path.write_bytes(data)
    with Image.open(path) as im:
        assert im.size == (40, 20)  # stored sideways
        assert to_pil(im).size == (20, 40)  # upright
    assert to_pil(path).size == (20, 40)


# ----------------------------------------------------------------------------- elongated images


def strip_png(w: int, h: int) -> bytes:
    return encode(Image.new("RGB", (w, h), (120, 80, 40)), optimize=True)


def test_10000x1_png_is_refused_naming_the_limit() -> None:
    data = strip_png(10000, 1)
    assert len(data) < 200  # the 131-byte file
    with pytest.raises(InputError, match=r"10000x1 pixels, an aspect ratio of 10000:1; the limit is 20:1 .*MAX_ASPECT_RATIO"):
        to_model_input(data, SHAPES_WEIGHTS.transforms())


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(lambda: strip_png(1, 1_000_000), id="png-1x1000000"),
        pytest.param(lambda: Image.new("L", (2100, 100)), id="pil-21:1"),
        pytest.param(lambda: np.zeros((1, 5000, 3), np.uint8), id="array-1x5000"),
    ],
)
def test_elongated_images_are_refused_on_every_path(source: object) -> None:
    with pytest.raises(InputError, match=r"aspect ratio of \d+:1; the limit is 20:1"):
        to_pil(source())  # type: ignore[operator]


def test_aspect_ratio_at_the_limit_is_accepted() -> None:
    assert MAX_ASPECT_RATIO == 20.0
    x = to_model_input(strip_png(400, 20), SHAPES_WEIGHTS.transforms())
    assert x.shape == (3, 128, 128)


RSS_PROBE = textwrap.dedent(
    """
    import io, json, resource, sys
    from PIL import Image
    from saliency_widget.errors import InputError
    from saliency_widget.viz.images import imagenet_transform, to_model_input
    from saliency_widget.models.shapes_cnn import SHAPES_WEIGHTS
    import torchvision.transforms as T

    transforms = {
        "bundled": SHAPES_WEIGHTS.transforms(),
        "imagenet": imagenet_transform(),
        "user": T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor()]),
    }
    buf = io.BytesIO()
    Image.new("RGB", (10000, 1), (120, 80, 40)).save(buf, "PNG", optimize=True)
    data = buf.getvalue()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    try:
        to_model_input(data, transforms[sys.argv[1]])
        error = None
    except InputError as exc:
        error = str(exc)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"growth_mb": (after - before) / 1024, "bytes": len(data), "error": error}))
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux only")
@pytest.mark.parametrize("transform", ["bundled", "imagenet", "user"])
def test_10000x1_png_peak_memory_stays_small(transform: str) -> None:
    # peak RSS of a fresh process, so nothing the test session allocated hides the growth
    out = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, transform], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300, check=True
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["bytes"] < 200
    assert res["error"] is not None and "10000x1 pixels" in res["error"] and "20:1" in res["error"]
    assert res["growth_mb"] < 100, res
