"""Interactive reports with ``featviz=``: each exported filter's feature visualization in the page's bundle."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from saliency_widget import objectives as obj
from saliency_widget import visualize
from saliency_widget.cli import main
from saliency_widget.data import load_sample
from saliency_widget.errors import InputError
from saliency_widget.models import shapes_cnn
from saliency_widget.viz.bundle import decode
from saliency_widget.viz.featviz_page import to_pil
from saliency_widget.viz.interactive_featviz import FeatvizOptions
from saliency_widget.viz.interactive_report import interactive_report
from saliency_widget.viz.viewer_page import InteractivePage

FV = {"steps": 3, "size": 32}  # tiny: the images need not be good, only equal to visualize()'s
CHANNELS = {"features.relu1": [2, 0, 5], "features.relu4": [7, 1]}


def _report(featviz: Any = False) -> InteractivePage:
    image = load_sample("shapes_star")
    return interactive_report([image], shapes_cnn(), methods=["gradient"], topk=1, names=["star"],
                              layers=list(CHANNELS), channels=CHANNELS, featviz=featviz)


@pytest.fixture(scope="module")
def pages() -> tuple[InteractivePage, InteractivePage]:
    return _report(), _report(FV)


def _png(raw: bytes, ref: dict[str, Any]) -> Image.Image:
    data = decode(raw, ref)
    assert data.dtype == np.uint8 and data.ndim == 1  # PNG bytes, stored as they are
    return Image.open(io.BytesIO(data.tobytes()))


@pytest.mark.parametrize("key", list(CHANNELS))
def test_each_exported_filter_carries_the_visualize_result(pages: tuple[InteractivePage, InteractivePage], key: str) -> None:
    _, page = pages
    layer = next(e for e in page.manifest["images"][0]["layers"] if e["key"] == key)
    assert len(layer["featviz"]) == len(layer["channels"]) == len(CHANNELS[key])
    order = sorted(CHANNELS[key])  # one batched call per layer, in channel order
    vis = visualize(shapes_cnn(), [obj.channel(key, c) for c in order], steps=3, size=32, seed=0)
    for c, ref in zip(layer["channels"], layer["featviz"]):
        got = _png(page.payload, ref)
        assert got.format == "PNG" and got.size == (32, 32) and got.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(got), np.asarray(to_pil(vis, order.index(c))))
    assert page.manifest["featviz"] == FeatvizOptions(steps=3, size=32).as_text()
    assert page.manifest["settings"]["feature visualization"].startswith("3 steps, 32 px, fourier, seed 0")


def test_without_the_option_the_bundle_is_unchanged(pages: tuple[InteractivePage, InteractivePage]) -> None:
    plain, with_fv = pages
    assert "featviz" not in plain.manifest and "featviz" not in plain.size.parts
    assert all("featviz" not in layer for layer in plain.manifest["images"][0]["layers"])
    # the same maps, features and projections, byte for byte: the visualizations are only appended
    stripped = json.loads(json.dumps(with_fv.manifest["images"]))
    for layer in stripped[0]["layers"]:
        del layer["featviz"]
    assert stripped == plain.manifest["images"]
    n = sum(v for k, v in plain.size.parts.items() if k != "colormaps")
    assert with_fv.payload[:n] == plain.payload[:n]
    assert with_fv.size.parts["featviz"] > 0
    again = _report(False)
    assert again.payload == plain.payload and again.size.parts == plain.size.parts


@pytest.mark.parametrize(
    ("value", "message"),
    [({"stepz": 3}, "unknown featviz option(s) ['stepz']"), ("yes", "featviz='yes': expected True, False or a mapping")],
)
def test_bad_featviz_values_are_one_line_errors(value: Any, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        FeatvizOptions.of(value)


def test_featviz_true_gives_the_modest_defaults() -> None:
    assert FeatvizOptions.of(True) == FeatvizOptions(steps=32, size=64, param="fourier", seed=0, transforms="standard")
    assert FeatvizOptions.of(False) is None and FeatvizOptions.of(None) is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--featviz"], "--featviz adds feature visualizations to an interactive page; add --interactive"),
        (["--interactive", "--featviz", "--featviz-steps", "0"], "--featviz-steps must be at least 1, got 0"),
    ],
)
def test_bad_featviz_flags_are_one_line_errors(extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["render", "sample:shapes_star", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_render_interactive_featviz_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "star.html"
    assert main(["render", "sample:shapes_star", "--interactive", "--methods", "gradient", "--topk", "1",
                 "--layers", "features.relu1", "--featviz", "--featviz-steps", "2", "--out", str(out)]) == 0
    assert "feature visualization of features.relu1: 16 filter(s)" in capsys.readouterr().err
    page = out.read_text(encoding="utf-8")
    manifest = json.loads(re.search(r"<script type='application/json' class='sw-manifest'>(.*?)</script>", page).group(1))  # type: ignore[union-attr]
    layer = manifest["images"][0]["layers"][0]
    assert len(layer["featviz"]) == len(layer["channels"]) == 16
    assert manifest["featviz"].startswith("2 steps, 64 px")


def _served(page: InteractivePage) -> str:
    """The page without its CSP and inline module: the harness serves and imports js/viewer.js instead (which boots it)."""
    text = re.sub(r"<meta http-equiv='Content-Security-Policy'[^>]*>", "", page.html)
    return re.sub(r"<script type='module'>.*</script>", "", text, flags=re.S)


_SHOWN = """async () => {
  const root = document.querySelector('.sw-viewer');
  for (let i = 0; i < 200 && root.dataset.swReady !== 'yes'; i++) await new Promise((r) => setTimeout(r, 25));
  const fig = root.querySelector('[data-featviz]'), img = root.querySelector('img[data-panel=featviz]');
  if (!fig || fig.hidden) return {shown: false};
  await img.decode();
  const cv = document.createElement('canvas'); cv.width = img.naturalWidth; cv.height = img.naturalHeight;
  const ctx = cv.getContext('2d'); ctx.drawImage(img, 0, 0);
  return {shown: true, channel: Number(img.dataset.channel), title: fig.querySelector('.sw-title').textContent,
          caption: fig.querySelector('.sw-caption').textContent, w: img.naturalWidth, h: img.naturalHeight,
          visible: img.getBoundingClientRect().width > 0,
          rgba: Array.from(ctx.getImageData(0, 0, cv.width, cv.height).data)};
}"""


@pytest.mark.browser
def test_the_viewer_shows_the_selected_filters_visualization(pages: tuple[InteractivePage, InteractivePage]) -> None:
    from tests.browser.harness import js_modules_page

    _, page = pages
    with js_modules_page(_served(page), ("viewer.js", "render.js", "planes.js"), {"V": "viewer.js"}) as pg:
        st = page.manifest["state"]
        for step in range(2):
            got = pg.evaluate(_SHOWN)
            layer = next(e for e in page.manifest["images"][0]["layers"] if e["key"] == st["layer"])
            i = layer["channels"].index(got["channel"])
            want = np.asarray(_png(page.payload, layer["featviz"][i]))
            assert got["shown"] and got["visible"] and (got["w"], got["h"]) == (32, 32)
            assert got["title"] == f"what excites filter {got['channel']}"
            assert f"optimised to excite {layer['key']} filter {got['channel']}" in got["caption"]
            np.testing.assert_array_equal(np.asarray(got["rgba"], np.uint8).reshape(32, 32, 4)[..., :3], want)
            if step == 0:  # click another filter: its own visualization replaces the first
                other = next(c for c in layer["channels"] if c != got["channel"])
                pg.click(f".sw-filter[data-channel='{other}']")
                assert pg.evaluate(_SHOWN)["channel"] == other


@pytest.mark.browser
def test_the_viewer_shows_no_visualization_panel_without_the_option(pages: tuple[InteractivePage, InteractivePage]) -> None:
    from tests.browser.harness import js_modules_page

    plain, _ = pages
    with js_modules_page(_served(plain), ("viewer.js", "render.js", "planes.js"), {"V": "viewer.js"}) as pg:
        assert pg.evaluate(_SHOWN) == {"shown": False}
        assert pg.evaluate("() => document.querySelector('.sw-viewer').dataset.swReady") == "yes"


@pytest.mark.browser
def test_the_page_shows_it_from_a_file_under_its_own_csp(pages: tuple[InteractivePage, InteractivePage], tmp_path: Path) -> None:
    from tests.browser.harness import browser_page

    _, page = pages
    path = tmp_path / "fv.html"
    path.write_text(page.html, encoding="utf-8")
    problems: list[str] = []
    with browser_page() as pg:
        pg.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        pg.goto(path.as_uri())
        got = pg.evaluate(_SHOWN)
    assert got["shown"] and got["visible"] and (got["w"], got["h"]) == (32, 32)
    assert problems == []  # a data: image is allowed by the page's img-src; nothing else was loaded


def test_explorer_page_carries_the_visualizations_with_the_explorers_normalisation() -> None:
    from saliency_widget.engine import Explainer
    from saliency_widget.viz.images import describe_model, to_model_input
    from saliency_widget.viz.interactive_report import explorer_page

    model = shapes_cnn()
    io_ = describe_model(model)
    ex = Explainer(model, to_model_input(load_sample("shapes_star"), io_.transform).unsqueeze(0))
    state = {"method": "gradient", "target": None, "layer": "features.relu4", "channel": 3, "position": None,
             "sign": "absolute", "clip": 99.0, "cmap": "magma", "overlay": False, "alpha": 0.6}
    page = explorer_page(ex, state, name="star", labels=list(io_.labels or []), mean=io_.mean, std=io_.std, methods=["gradient"],
                         topk=1, layers=["features.relu4"], channels=[3, 1], featviz=FV)
    layer = page.manifest["images"][0]["layers"][0]
    assert layer["channels"] == [1, 3] and len(layer["featviz"]) == 2
    vis = visualize(model, [obj.channel("features.relu4", c) for c in (1, 3)], steps=3, size=32, seed=0)
    for i, ref in enumerate(layer["featviz"]):
        np.testing.assert_array_equal(np.asarray(_png(page.payload, ref)), np.asarray(to_pil(vis, i)))
    assert "featviz" not in explorer_page(ex, state, name="star", labels=list(io_.labels or []), mean=io_.mean, std=io_.std,
                                          methods=["gradient"], topk=1, layers=["features.relu4"], channels=[3, 1]).manifest


def test_a_layer_that_cannot_be_visualized_gets_a_message_and_the_page_is_still_built() -> None:
    lines: list[str] = []
    page = interactive_report([load_sample("shapes_star")], shapes_cnn(), methods=["gradient"], topk=1, names=["star"],
                              layers=["features.relu4"], channels=[1], featviz={"steps": 1, "size": 16}, progress=lines.append)
    layer = page.manifest["images"][0]["layers"][0]
    assert "featviz" not in layer and layer["featviz_message"].startswith("no visualization: ")
    assert "Output size is too small" in layer["featviz_message"]  # 16 px through five 2x2 poolings
    assert any(line.startswith("feature visualization of features.relu4: no visualization") for line in lines)
