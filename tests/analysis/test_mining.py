"""Dataset mining in one process: the exact top-k order, shard merging, the index format and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.testing import assert_close

import saliency_widget as sw
from saliency_widget.analysis import load_index, mine, top_activations
from saliency_widget.analysis.running import RunningTopK, select_topk
from saliency_widget.analysis.shards import Shard, resolve_shard, shard_batches
from saliency_widget.data.folders import ImageFolderData, SceneStream
from saliency_widget.models import shapes_cnn
from saliency_widget.viz.modelio import describe_model
from tests.helpers import assert_unchanged, seeded_randn, snapshot

LAYERS = ["features.relu1", "features.conv2"]


# ---------------------------------------------------------------- the total order
def test_select_topk_breaks_ties_by_smaller_image_index() -> None:
    values = torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0]])
    index = torch.tensor([[7, 9, 4, 1, 6]])
    pos = torch.arange(10).view(1, 5, 2)
    v, i, p = select_topk(values, index, pos, 3)
    assert v.tolist() == [[3.0, 3.0, 3.0]]
    assert i.tolist() == [[4, 6, 9]]
    assert p.tolist() == [[[4, 5], [8, 9], [2, 3]]]


def test_running_topk_first_position_on_ties() -> None:
    act = torch.tensor([[[[0.0, 2.0], [2.0, 1.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])  # (B=2, C=1, 2, 2)
    run = RunningTopK(2)
    run.update(act, torch.tensor([5, 3]))
    assert run.values is not None and run.index is not None and run.pos is not None
    assert run.values.tolist() == [[2.0, 0.0]]
    assert run.index.tolist() == [[5, 3]]
    assert run.pos.tolist() == [[[0, 1], [0, 0]]]


@pytest.mark.parametrize("world", [2, 3, 5])
@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_merged_shards_equal_one_pass(world: int, order: str) -> None:
    # many exact ties (ReLU zeros, rounded values) so the tie rule matters
    acts = torch.relu(seeded_randn(40, 4, 3, 3, seed=7)).mul(2).round()
    whole = RunningTopK(6)
    for b in range(0, 40, 4):
        whole.update(acts[b : b + 4], torch.arange(b, b + 4))
    shards = [RunningTopK(6) for _ in range(world)]
    for n, b in enumerate(range(0, 40, 4)):
        shards[n % world].update(acts[b : b + 4], torch.arange(b, b + 4))
    merged = RunningTopK(6)
    for s in shards if order == "forward" else shards[::-1]:
        merged.merge(s)
    assert whole.index is not None and merged.index is not None
    assert torch.equal(merged.index, whole.index)
    assert torch.equal(merged.pos, whole.pos)  # type: ignore[arg-type]
    assert torch.equal(merged.values, whole.values)  # type: ignore[arg-type]
    assert merged.seen == whole.seen == 40


def test_shard_batches_of_a_dataset_own_every_world_th_batch() -> None:
    data = torch.utils.data.TensorDataset(torch.arange(10).float().view(10, 1, 1, 1).expand(10, 3, 2, 2))
    got = [(b, first, x.shape[0]) for b, first, x in shard_batches(data, Shard(1, 2), batch_size=3)]
    assert got == [(1, 3, 3), (3, 9, 1)]
    assert [(b, f) for b, f, _x in shard_batches(data, Shard(0, 2), batch_size=3, start=1, limit=7)] == [(2, 6)]


@pytest.mark.parametrize("bad", [(2, 2), (0, 0), "yes", (True, 2)])
def test_resolve_shard_rejects(bad: object) -> None:
    with pytest.raises(sw.InputError, match="shard must be None, 'auto' or"):
        resolve_shard(bad)


def test_top_activations_shards_merge_to_the_single_result(model: torch.nn.Module) -> None:
    data = SceneStream(24, describe_model(model).transform, size=32, seed=5)
    full = top_activations(model, data, "features.relu2", channels=[0, 3, 8], k=4, progress=False, batch_size=5, project=False)
    parts = [top_activations(model, data, "features.relu2", channels=[0, 3, 8], k=4, progress=False, batch_size=5,
                             project=False, shard=(r, 2)) for r in range(2)]
    v, i, p = select_topk(torch.cat([q.values for q in parts], 1), torch.cat([q.image_index for q in parts], 1),
                          torch.cat([q.positions for q in parts], 1), 4)
    assert torch.equal(i, full.image_index) and torch.equal(p, full.positions)
    assert_close(v, full.values, rtol=0, atol=0)
    assert parts[0].images_seen + parts[1].images_seen == 24


# ---------------------------------------------------------------- mine() and the index
@pytest.fixture(scope="module")
def mined(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SceneStream]:
    model = shapes_cnn()
    io = describe_model(model)
    data = SceneStream(20, io.transform, size=32, seed=3)
    out = tmp_path_factory.mktemp("index")
    before = snapshot(model)
    mine(model, data, LAYERS, out, k=3, batch_size=6, checkpoint_every=1, project_batch=7, mean=io.mean, std=io.std, progress=False)
    assert_unchanged(model, before)
    return out, data


def test_index_equals_brute_force(mined: tuple[Path, SceneStream]) -> None:
    out, data = mined
    model = shapes_cnn()
    index = load_index(out, model=model)
    assert index.layers == LAYERS
    assert index.channels("features.relu1") == list(range(16))
    images = torch.stack([data[i][0] for i in range(len(data))])
    for layer in LAYERS:
        acts = sw.Explainer(model, images).activation(layer)  # (N, C, h, w)
        for c in (0, 5, 15):
            flat = acts[:, c].reshape(len(data), -1)
            best, where = flat.max(1)
            order = sorted(range(len(data)), key=lambda n: (-float(best[n]), n))[:3]
            w = acts.shape[-1]
            want = [(n, int(where[n]) // w, int(where[n]) % w) for n in order]
            got = index.top(layer, c)
            assert [(r.image, r.y, r.x) for r in got] == want
            assert_close(torch.tensor([r.value for r in got]), best[order])


def test_index_boxes_names_and_patches(mined: tuple[Path, SceneStream]) -> None:
    out, data = mined
    model = shapes_cnn()
    index = load_index(out)
    rec = index.top("features.conv2", 4)[0]
    ex = sw.Explainer(model, data[rec.image][0][None])
    assert index.boxes("features.conv2", 4)[0] == ex.receptive_field("features.conv2", rec.y, rec.x)
    assert index.image_name(rec.image) == f"sample:shapes?seed=3&size=32#{rec.image}"
    assert index.image_hash(rec.image) == data.file_hash(rec.image)
    pairs = index.patch_pngs("features.conv2", 4)
    assert len(pairs) == 3 and all(a[:8] == b"\x89PNG\r\n\x1a\n" and b[:8] == b"\x89PNG\r\n\x1a\n" for a, b in pairs)
    y0, x0, y1, x1 = index.boxes("features.conv2", 4)[0]
    assert sw.viz.render.from_png(pairs[0][0]).shape == (y1 - y0, x1 - x0, 3)
    assert index.grid_png("features.conv2", 4)[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / ".mining").exists()  # checkpoints go once the manifest is written


def test_mine_again_returns_the_index_without_scanning(mined: tuple[Path, SceneStream], monkeypatch: pytest.MonkeyPatch) -> None:
    out, data = mined
    import saliency_widget.analysis.mining as M

    monkeypatch.setattr(M, "_scan", lambda *a, **kw: pytest.fail("rescanned"))
    index = mine(shapes_cnn(), data, LAYERS, out, k=3, batch_size=6, checkpoint_every=1, project_batch=7, progress=False)
    assert index.top("features.relu1", 2) == load_index(out).top("features.relu1", 2)


@pytest.mark.parametrize(("part", "what"), [
    ("npz", "does not match its checksum"),
    ("manifest", "not valid JSON"),
    ("images", "images.json is missing"),
    ("version", "format version 99"),
    ("no-manifest", "is not a top-k index"),
    ("patch", "is missing"),
])
def test_corrupt_index_is_a_clear_error(mined: tuple[Path, SceneStream], tmp_path: Path, part: str, what: str) -> None:
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(mined[0], out)
    if part == "npz":
        f = out / "layers" / "features.relu1.npz"
        raw = bytearray(f.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        f.write_bytes(bytes(raw))
    elif part == "manifest":
        (out / "manifest.json").write_text('{"format": "saliency-widget-topk-index", "vers')
    elif part == "images":
        (out / "images.json").unlink()
    elif part == "version":
        man = json.loads((out / "manifest.json").read_text())
        man["version"] = 99
        (out / "manifest.json").write_text(json.dumps(man))
    elif part == "no-manifest":
        (out / "manifest.json").unlink()
    else:
        (out / "patches" / "features.conv2" / "c0004_1_proj.png").unlink()
    with pytest.raises(sw.InputError, match=what):
        load_index(out).patch_pngs("features.conv2", 4)


def test_index_refuses_another_model(mined: tuple[Path, SceneStream]) -> None:
    out, data = mined
    other = shapes_cnn()
    with torch.no_grad():
        other.features.conv1.bias.add_(1e-3)
    with pytest.raises(sw.ModelError, match=r"mined with model .*ShapesCNN .*not with this"):
        load_index(out, model=other)
    with pytest.raises(sw.ModelError, match="refusing to mix models"):
        mine(other, data, LAYERS, out, k=3, batch_size=6, progress=False)


def test_mine_refuses_other_options(mined: tuple[Path, SceneStream]) -> None:
    out, data = mined
    with pytest.raises(sw.InputError, match=r"holds a run with other options \(k\)"):
        mine(shapes_cnn(), data, LAYERS, out, k=4, batch_size=6, project_batch=7, progress=False)


@pytest.mark.parametrize(("layer", "channel", "match"), [
    ("features.relu4", 0, r"layer 'features.relu4' is not in the index at .*; it holds 'features.relu1', 'features.conv2'"),
    ("features.relu1", 16, "channel 16 of layer 'features.relu1' is not in the index; it holds channels 0..15"),
])
def test_index_lookup_errors(mined: tuple[Path, SceneStream], layer: str, channel: int, match: str) -> None:
    with pytest.raises(sw.InputError, match=match):
        load_index(mined[0]).top(layer, channel)


def test_image_folder_data_recursive_sorted(tmp_path: Path) -> None:
    from PIL import Image

    for rel in ["b/x.png", "a/y.jpg", "a/deep/z.png", "notes.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".txt"):
            (tmp_path / rel).write_text("not an image")
        else:
            Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(tmp_path / rel)
    data = ImageFolderData(tmp_path, describe_model(shapes_cnn()).transform)
    assert data.paths == ["a/deep/z.png", "a/y.jpg", "b/x.png"]
    x, i = data[2]
    assert x.shape == (3, 128, 128) and i == 2
    (tmp_path / "empty").mkdir()
    with pytest.raises(sw.InputError, match="no image files"):
        ImageFolderData(tmp_path / "empty", describe_model(shapes_cnn()).transform)


@pytest.mark.parametrize(("args", "message"), [
    (["--data", "no/such/folder", "--layers", "features.relu1"], "--data 'no/such/folder' is not a folder"),
    (["--data", "sample:cats", "--layers", "features.relu1"], "the only bundled stream is sample:shapes"),
    (["--data", "sample:shapes", "--layers", " , "], "names no layer"),
    (["--data", "sample:shapes", "--layers", "features.nope", "--limit", "4"], "features.nope"),
    (["--data", "sample:shapes", "--layers", "features.relu1", "--k", "0", "--limit", "4"], "k must be a positive int, got 0"),
    (["--data", "sample:shapes", "--layers", "features.relu1", "--method", "magic", "--limit", "4"], "unknown method 'magic'"),
])
def test_cli_mine_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    from saliency_widget.cli import main

    assert main(["mine", *args, "--out", str(tmp_path / "idx"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("saliency-widget: error: ") and message in err and err.count("\n") == 1


def test_cli_mine_writes_an_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from saliency_widget.cli import main

    out = tmp_path / "idx"
    argv = ["mine", "--data", "sample:shapes", "--scene-size", "32", "--limit", "6", "--layers", "features.relu1", "--k", "2",
            "--batch-size", "4", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    assert f"wrote {out}: 1 layer(s), top-2" in capsys.readouterr().out
    index = load_index(out, model=shapes_cnn())
    assert [len(index.top("features.relu1", c)) for c in (0, 15)] == [2, 2]
    assert index.manifest["preprocessing"]["transform"].startswith("Preprocess(size=128")


def test_cli_mine_shows_progress_of_the_scan_and_of_the_projections(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --quiet both phases have a bar: the projections often take longer than the scan."""
    from saliency_widget.cli import main

    argv = ["mine", "--data", "sample:shapes", "--scene-size", "32", "--limit", "4", "--layers", "features.relu1", "--k", "1",
            "--out", str(tmp_path / "idx")]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "mining 1 layer(s)" in err and "projecting the winners" in err and "16/16" in err  # 16 filters x top-1


def test_mine_failing_mid_scan_leaves_the_model_unchanged(tmp_path: Path) -> None:
    model = shapes_cnn()
    before = snapshot(model)
    batches = [torch.zeros(2, 3, 64, 64), torch.zeros(3, 64, 64)]  # the second is not a batch
    with pytest.raises(sw.InputError, match=r"image batches of shape \(B, C, H, W\).*got \(3, 64, 64\)"):
        mine(model, batches, ["features.relu2"], tmp_path / "idx", k=2, progress=False)
    assert_unchanged(model, before)
    assert not (tmp_path / "idx" / "manifest.json").exists()
