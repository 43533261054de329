"""build_atlas in-process on a tiny set: the histograms against a direct computation, --index reuse, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from saliency_widget.analysis import load_index
from saliency_widget.analysis.mining import mine
from saliency_widget.analysis.shards import Shard
from saliency_widget.atlas import build as atlas_build
from saliency_widget.atlas import build_atlas
from saliency_widget.atlas.histograms import activation_histograms
from saliency_widget.atlas.pages import CSP, histogram_svg
from saliency_widget.cli import main
from saliency_widget.data import ShapesDataset
from saliency_widget.engine.keys import LayerKey
from saliency_widget.errors import InputError, LayerError, SaliencyError
from saliency_widget.models import shapes_cnn

TINY = {"steps": 1, "size": 32, "batch_size": 8, "shard": None}


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return shapes_cnn()


@pytest.fixture(scope="module")
def data() -> ShapesDataset:
    return ShapesDataset(20, size=32, seed=5)


def test_histograms_equal_a_direct_computation(model: torch.nn.Module, data: ShapesDataset) -> None:
    keys = [LayerKey("features.relu1"), LayerKey("features.relu2")]
    got = activation_histograms(model, data, keys, Shard(), batch_size=6, bins=8)
    x = torch.stack([data[i][0] for i in range(len(data))])
    with torch.no_grad():
        a1 = model.features[:2](x)  # conv1, relu1
        a2 = model.features[:5](x)  # ... pool1, conv2, relu2
    for key, act in (("features.relu1", a1), ("features.relu2", a2)):
        per_image = act.flatten(2).amax(2).double().numpy()  # (N, C)
        h = got[key]
        assert h.images == 20 and h.counts.shape == (act.shape[1], 8)
        for c in (0, act.shape[1] - 1):
            want, edges = np.histogram(per_image[:, c], bins=8)
            np.testing.assert_allclose(h.edges[c], edges, rtol=1e-6)
            np.testing.assert_array_equal(h.counts[c], want)
        np.testing.assert_allclose(h.active, (per_image > 0).mean(0))
        np.testing.assert_allclose(h.median, np.median(per_image, 0), rtol=1e-6)


def test_histograms_of_shards_merge_to_one_process(model: torch.nn.Module, data: ShapesDataset) -> None:
    keys = [LayerKey("features.relu2")]
    one = activation_histograms(model, data, keys, Shard(), batch_size=6)["features.relu2"]
    halves = [activation_histograms(model, data, keys, Shard(r, 2, False), batch_size=6)["features.relu2"] for r in range(2)]
    # without a process group each shard bins its own global batches: 0 and 2 (12 images), 1 and 3 (8)
    assert [h.images for h in halves] == [12, 8] and one.images == 20
    assert int(one.counts.sum()) == 20 * 32


@pytest.mark.slow
def test_built_site_and_manifest(model: torch.nn.Module, data: ShapesDataset, tmp_path: Path) -> None:
    atlas = build_atlas(model, data, ["features.relu2"], tmp_path / "site", channels=[3, 1], spec="shapes", **TINY)
    man = json.loads((tmp_path / "site" / "atlas.json").read_text())
    assert man == atlas.manifest
    layer = man["layers"]["features.relu2"]
    assert [f["index"] for f in layer["filters"]] == [1, 3] and layer["channels"] == 32
    idx = load_index(tmp_path / "site" / "index")
    for f in layer["filters"]:
        assert len(f["top"]) == len(f["projections"]) == 9
        assert f["values"] == [round(r.value, 6) for r in idx.top("features.relu2", f["index"])]
        for p in [*f["top"], *f["projections"], f["visualization"], f["page"]]:
            assert (tmp_path / "site" / p).is_file(), p
        assert sum(f["histogram"]["counts"]) == 20
    page = (tmp_path / "site" / "layers" / "features.relu2" / "c0001.html").read_text()
    assert "href='c0003.html'" in page and "rel='next'" in page and "rel='prev'" not in page
    assert CSP in page and "http" not in page.replace("http-equiv", "")
    assert atlas.bytes > 0 and atlas.seconds > 0


@pytest.mark.slow
def test_an_existing_index_is_reused_without_mining(model: torch.nn.Module, data: ShapesDataset, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    mine(model, data, ["features.relu1", "features.relu2"], tmp_path / "idx", batch_size=8, shard=None, progress=False)
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "idx").rglob("*") if p.is_file()}

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the index was mined again")

    monkeypatch.setattr(atlas_build, "mine", refuse)
    atlas = build_atlas(model, data, ["features.relu1"], tmp_path / "site", index=tmp_path / "idx", channels=[0], **TINY)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "idx").rglob("*") if p.is_file()} == before
    f = atlas.manifest["layers"]["features.relu1"]["filters"][0]
    assert atlas.manifest["index"] is None and f["top"][0] == "patches/features.relu1/c0000_0_img.png"  # copied into the site
    assert (tmp_path / "site" / f["top"][0]).read_bytes() == (tmp_path / "idx" / "patches/features.relu1/c0000_0_img.png").read_bytes()
    with pytest.raises(LayerError, match=r"layer\(s\) \['features.relu3'\] are not in the index .* 'features.relu1', 'features.relu2'"):
        build_atlas(model, data, ["features.relu3"], tmp_path / "site", index=tmp_path / "idx", **TINY)
    with pytest.raises(InputError, match=r"was mined from 'saliency_widget.data.shapes.ShapesDataset\(len=20\).*not from this data \('other'\)"):
        build_atlas(model, Named(20, size=32, seed=5), ["features.relu1"], tmp_path / "site", index=tmp_path / "idx", **TINY)


class Named(ShapesDataset):
    """Data that says what it is (as an image folder does): another identity than the index's."""

    identity = "other"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"layers": ["features.nope"]}, LayerError, r"layer 'features.nope' is not a layer .* valid layers are .*'features.relu1'"),
        ({"layers": ["classifier.fc1"]}, LayerError, r"'classifier.fc1' is not a layer of the model with a \(C, h, w\) output"),
        ({"layers": "features.relu1"}, InputError, r"layers must be a non-empty list"),
        ({"channels": [0, 99]}, InputError, r"channel\(s\) \[99\] out of range for layer 'features.relu1': it has 16 channels"),
        ({"steps": 0}, InputError, r"steps must be a positive int, got 0"),
    ],
    ids=["unknown-layer", "flat-layer", "single-string", "channel-range", "steps"],
)
def test_errors_name_the_value_and_the_choices(model: torch.nn.Module, data: ShapesDataset, tmp_path: Path,
                                               kwargs: dict[str, Any], error: type[SaliencyError], message: str) -> None:
    args: dict[str, Any] = {"layers": ["features.relu1"], **TINY, **kwargs}
    with pytest.raises(error, match=message):
        build_atlas(model, data, args.pop("layers"), tmp_path / "site", **args)
    assert not (tmp_path / "site" / "index").exists()  # refused before any mining


def test_out_holding_something_else_is_refused(model: torch.nn.Module, data: ShapesDataset, tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match=r"holds notes.txt but no atlas.json; refusing"):
        build_atlas(model, data, ["features.relu1"], tmp_path / "site", **TINY)
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match=r"is a file; give a folder"):
        build_atlas(model, data, ["features.relu1"], tmp_path / "file", **TINY)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--layers", "features.nope"], "layer 'features.nope' is not a layer of the model"),
        (["--layers", "features.relu1", "--channels", "0-3,x"], "--channels item 'x' is not an int"),
        (["--layers", "features.relu1", "--channels", "40"], "channel(s) [40] out of range for layer 'features.relu1': it has 16 channels"),
        (["--layers", "features.relu1", "--steps", "0"], "--steps must be a positive int, got 0"),
        (["--layers", "features.relu1", "--data", "sample:cats"], "the only bundled stream is sample:shapes"),
    ],
    ids=["layer", "channels-syntax", "channels-range", "steps", "data"],
)
def test_cli_errors_are_one_line(argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["atlas", "--data", "sample:shapes", "--limit", "8", "--scene-size", "32", "--out", str(tmp_path / "site"), "--quiet"]
    assert main(base + argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("saliency-widget: error: ") and message in err[0], err


def test_histogram_svg_marks_and_scale() -> None:
    svg = histogram_svg([0.0, 1.0, 2.0], [9, 0], marks=[2.0])
    assert svg.count("<rect") == 2 and "9 image(s)" in svg and "stroke='#e4572e'" in svg and "style=" not in svg


@pytest.mark.slow
def test_an_image_folder_and_a_rebuild_with_other_layers(model: torch.nn.Module, tmp_path: Path) -> None:
    from PIL import Image

    from saliency_widget.data.folders import ImageFolderData
    from saliency_widget.data.shapes import MEAN, STD

    scenes = ShapesDataset(6, size=32, seed=9, transform=lambda a: torch.from_numpy(a.copy()))
    (tmp_path / "photos" / "sub").mkdir(parents=True)
    for i in range(6):
        Image.fromarray(scenes[i][0].numpy()).save(tmp_path / "photos" / ("sub" if i % 2 else "") / f"p{i}.png")
    mean, std = torch.tensor(MEAN).view(3, 1, 1), torch.tensor(STD).view(3, 1, 1)
    folder = ImageFolderData(tmp_path / "photos", lambda im: (torch.from_numpy(np.asarray(im.convert("RGB"), np.float32) / 255).permute(2, 0, 1) - mean) / std)
    site = tmp_path / "site"
    atlas = build_atlas(model, folder, ["features.relu1"], site, channels=[2], **TINY)
    f = atlas.manifest["layers"]["features.relu1"]["filters"][0]
    assert len(f["top"]) == 6 and all(n.endswith(".png") for n in f["images"])  # fewer images than k: all of them
    assert atlas.manifest["data"]["name"] == str(tmp_path / "photos") and str(tmp_path / "photos") in (site / "index.html").read_text()
    # the same site with another layer: the index is mined again (restart) and the old layer's pages go
    again = build_atlas(model, folder, ["features.relu2"], site, channels=[0], restart=True, **TINY)
    assert list(again.manifest["layers"]) == ["features.relu2"]
    assert not (site / "layers" / "features.relu1").exists() and not (site / "img" / "features.relu1").exists()
    assert sorted(p.name for p in (site / "layers").iterdir()) == ["features.relu2"]
