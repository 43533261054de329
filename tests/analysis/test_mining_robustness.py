"""Robustness round 3 (issue 26), mining and its index under hostile files and edited data.

Six seeded 16 px BMP images (uncompressed: an edit in place keeps the byte size), the bundled
model's first layer, k = 2. Every refusal is one ``SaliencyError`` line naming the value.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from saliency_widget.analysis import load_index, mine
from saliency_widget.analysis.runfolder import Checkpoints
from saliency_widget.data.folders import ImageFolderData
from saliency_widget.errors import InputError, SaliencyError
from saliency_widget.models import shapes_cnn
from saliency_widget.viz.modelio import describe_model

LAYER = "features.relu1"
FILES = ("a/0.bmp", "a/1.bmp", "b/2.bmp", "b/3.bmp", "c/4.bmp", "c/5.bmp")


def _write(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for rel in FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / rel)
    return root


def _mine(model: torch.nn.Module, folder: Path, out: Path, **kw: object) -> object:
    data = ImageFolderData(folder, describe_model(model).transform)
    return mine(model, data, [LAYER], out, k=2, batch_size=2, checkpoint_every=1, progress=False, **kw)  # type: ignore[arg-type]


def _one_line(err: pytest.ExceptionInfo[BaseException]) -> str:
    assert isinstance(err.value, SaliencyError)
    assert "\n" not in str(err.value)
    return str(err.value)


@pytest.fixture(scope="module")
def mined(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mined")
    _mine(shapes_cnn(), _write(root / "data"), root / "index")
    return root / "index"


def _copy(mined: Path, tmp_path: Path) -> Path:
    out = tmp_path / "index"
    shutil.copytree(mined, out)
    return out


def _values(index_dir: Path) -> dict[int, list[tuple[int, int, int, float]]]:
    index = load_index(index_dir)
    return {c: [tuple(r) for r in index.top(LAYER, c)] for c in index.channels(LAYER)}  # type: ignore[misc]


# ---------------------------------------------------------------- item 1: manifest paths stay in the index
@pytest.mark.parametrize("file", ["../other/layers/features.relu1.npz", "/etc/passwd", "layers/../../x.npz", "layers\\..\\..\\x.npz"])
def test_load_index_refuses_a_manifest_layer_file_outside_the_index(mined: Path, tmp_path: Path, file: str) -> None:
    """Item 1 (``x-manifest-layer-file-outside-index``): a manifest must not make load_index read ``../other/...``."""
    out = _copy(mined, tmp_path)
    other = tmp_path / "other" / "layers"
    other.mkdir(parents=True)
    shutil.copy(out / "layers" / "features.relu1.npz", other / "features.relu1.npz")  # a valid file, just not this index's
    man = json.loads((out / "manifest.json").read_text())
    man["layers"][LAYER]["file"] = file
    (out / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(InputError, match="outside its folder") as err:
        load_index(out)
    assert repr(file) in _one_line(err)


def test_load_index_refuses_a_layer_file_symlinked_out_of_the_index(mined: Path, tmp_path: Path) -> None:
    out = _copy(mined, tmp_path)
    outside = tmp_path / "elsewhere.npz"
    (out / "layers" / "features.relu1.npz").rename(outside)
    os.symlink(outside, out / "layers" / "features.relu1.npz")
    with pytest.raises(InputError, match=r"'layers/features.relu1.npz' resolves outside its folder") as err:
        load_index(out)
    _one_line(err)


def test_load_index_refuses_a_layer_key_that_would_put_patches_outside(mined: Path, tmp_path: Path) -> None:
    out = _copy(mined, tmp_path)
    man = json.loads((out / "manifest.json").read_text())
    man["layers"] = {"../../../etc": man["layers"][LAYER]}
    (out / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(InputError, match=r"corrupt index .*layer '../../../etc'.* outside") as err:
        load_index(out)
    _one_line(err)


# ---------------------------------------------------------------- item 11: images.json validated at load
def test_load_index_refuses_images_json_lacking_a_winners_entry(mined: Path, tmp_path: Path) -> None:
    """Item 11: an images.json without a winner's entry is refused by load_index, not a KeyError later."""
    out = _copy(mined, tmp_path)
    winner = load_index(out).top(LAYER, 0)[0].image
    images = json.loads((out / "images.json").read_text())
    j = images["ids"].index(winner)
    for key in ("ids", "names", "sha256"):
        del images[key][j]
    (out / "images.json").write_text(json.dumps(images))
    with pytest.raises(InputError, match=rf"images.json lacks the winning image\(s\) \[.*{winner}.*\] of layer '{LAYER}'") as err:
        load_index(out)
    _one_line(err)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda im: im | {"names": im["names"][:-1]}, "as many unique int ids"),
    (lambda im: im | {"ids": [str(i) for i in im["ids"]]}, "as many unique int ids"),
    (lambda im: im | {"ids": [0] * len(im["ids"])}, "as many unique int ids"),
])
def test_load_index_refuses_inconsistent_images_json(mined: Path, tmp_path: Path, edit: object, message: str) -> None:
    out = _copy(mined, tmp_path)
    images = json.loads((out / "images.json").read_text())
    (out / "images.json").write_text(json.dumps(edit(images)))  # type: ignore[operator]
    with pytest.raises(InputError, match=message) as err:
        load_index(out)
    _one_line(err)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda m: m | {"k": "9"}, "needs an int k >= 1 (has '9')"),
    (lambda m: m | {"layers": []}, "non-empty object of layers"),
    (lambda m: m | {"layers": {LAYER: "layers/features.relu1.npz"}}, f"layer '{LAYER}' needs a file"),
    (lambda m: m | {"layers": {LAYER: {**m["layers"][LAYER], "file": 3}}}, "manifest.json: layer 'features.relu1' file 3 is not a relative file path"),
])
def test_load_index_refuses_a_hand_edited_manifest(mined: Path, tmp_path: Path, edit: object, message: str) -> None:
    out = _copy(mined, tmp_path)
    man = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps(edit(man)))  # type: ignore[operator]
    with pytest.raises(InputError) as err:
        load_index(out)
    assert message in _one_line(err)


# ---------------------------------------------------------------- item 2: edited data never resumes stale checkpoints
class _Killed(Exception):
    """Stands for SIGKILL right after a checkpoint (the subprocess version is in test_mining_distributed)."""


def _mine_until_first_checkpoint(monkeypatch: pytest.MonkeyPatch, model: torch.nn.Module, folder: Path, out: Path) -> None:
    """Mine ``folder`` into ``out`` and stop right after the first scan checkpoint is written (a killed run)."""
    save = Checkpoints.save_scan

    def save_then_die(self: Checkpoints, obj: object) -> None:
        save(self, obj)
        raise _Killed

    with monkeypatch.context() as m:
        m.setattr(Checkpoints, "save_scan", save_then_die)
        with pytest.raises(_Killed):
            _mine(model, folder, out)


def _edit_in_place(path: Path, seed: int) -> None:
    """Other pixels, the same byte size, and the old mtime put back (the most careful way to hide an edit)."""
    st = path.stat()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def test_mining_resumed_after_images_edited_in_place_refuses_stale_checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 2: mine, stop after a checkpoint, edit an image in place (same size, same mtime), rerun."""
    model = shapes_cnn()
    folder = _write(tmp_path / "data")
    out = tmp_path / "index"
    _mine_until_first_checkpoint(monkeypatch, model, folder, out)
    assert (out / ".mining" / "rank0of1.pt").is_file()
    _edit_in_place(folder / "c" / "5.bmp", seed=99)  # after the checkpoint: only the resumed part would see it
    with pytest.raises(InputError, match="the data changed since .* was mined from it") as err:
        _mine(model, folder, out)
    assert "--restart" in _one_line(err)
    _mine(model, folder, out, restart=True)
    fresh = tmp_path / "fresh"
    _mine(model, folder, fresh)
    got, want = _values(out), _values(fresh)
    assert got.keys() == want.keys()
    for c in want:
        assert [r[:3] for r in got[c]] == [r[:3] for r in want[c]]
        assert_close(torch.tensor([r[3] for r in got[c]]), torch.tensor([r[3] for r in want[c]]), rtol=0, atol=0)


def test_mining_again_after_an_image_was_edited_refuses_the_old_index(mined: Path, tmp_path: Path) -> None:
    """Item 2, finished run: the index of the old images is not returned as if it were of the new ones."""
    out = _copy(mined, tmp_path)
    folder = tmp_path / "data"
    shutil.copytree(mined.parent / "data", folder)  # copy2 keeps the mtimes: the same data
    assert _mine(shapes_cnn(), folder, out) is not None  # unchanged data: the index is reused
    _edit_in_place(folder / "a" / "0.bmp", seed=7)
    with pytest.raises(InputError, match="the data changed since") as err:
        _mine(shapes_cnn(), folder, out)
    _one_line(err)


@pytest.mark.parametrize("change", ["edit", "edit-large", "touch", "rename", "add", "remove"])
def test_image_folder_identity_covers_content(tmp_path: Path, change: str) -> None:
    folder = _write(tmp_path)
    big = np.random.default_rng(1).integers(0, 256, (128, 128, 3), dtype=np.uint8)  # 48 KiB of pixels: sampled
    Image.fromarray(big).save(folder / "big.bmp")
    transform = describe_model(shapes_cnn()).transform
    before = ImageFolderData(folder, transform).identity
    assert ImageFolderData(folder, transform).identity == before
    f = folder / "a" / "1.bmp"
    if change == "edit":
        _edit_in_place(f, seed=5)
    elif change == "edit-large":
        st = (folder / "big.bmp").stat()
        big[0, 0] = 255 - big[0, 0]  # BMP rows run bottom-up: this pixel is in the last sample
        Image.fromarray(big).save(folder / "big.bmp")
        os.utime(folder / "big.bmp", ns=(st.st_atime_ns, st.st_mtime_ns))
    elif change == "touch":
        os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    elif change == "rename":
        f.rename(folder / "a" / "9.bmp")
    elif change == "add":
        shutil.copy(f, folder / "a" / "copy.bmp")
    else:
        f.unlink()
    assert ImageFolderData(folder, transform).identity != before


def test_mining_a_tensor_dataset_edited_in_place_refuses_the_old_run(tmp_path: Path) -> None:
    """Any indexable dataset: its first, middle and last items are part of the identity."""
    model = shapes_cnn()
    images = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    data = torch.utils.data.TensorDataset(images)
    mine(model, data, [LAYER], tmp_path, k=2, batch_size=2, progress=False)
    images[5] += 0.5  # in place: same length, same type
    with pytest.raises(InputError, match="the data changed since") as err:
        mine(model, data, [LAYER], tmp_path, k=2, batch_size=2, progress=False)
    _one_line(err)


# ---------------------------------------------------------------- item 9: data the model cannot take
@pytest.mark.parametrize("scan", ["mine", "top_activations"])
def test_mining_a_dataset_of_one_channel_images_names_its_shape_and_what_the_model_expects(tmp_path: Path, scan: str) -> None:
    """Item 9: a Dataset of 1-channel images for an RGB model is one line, not a raw convolution RuntimeError."""
    from saliency_widget.analysis import top_activations

    model = shapes_cnn()
    data = torch.utils.data.TensorDataset(torch.rand(6, 1, 32, 32, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(InputError) as err:
        if scan == "mine":
            mine(model, data, [LAYER], tmp_path, k=2, batch_size=4, progress=False)
        else:
            top_activations(model, data, LAYER, k=2, batch_size=4, progress=False)
    text = _one_line(err)
    assert "data images 0..3 (batch of shape (4, 1, 32, 32)) do not fit the model" in text
    assert "1 channel(s)" in text and "first convolution expects 3" in text


@pytest.mark.parametrize(("batch", "message"), [
    (torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8), r"data images 4..7 \(batch of shape \(4, 3, 32, 32\)\) have dtype torch.uint8"),
    (torch.full((4, 3, 32, 32), float("nan")), r"data image 4 holds NaN or Inf values"),
    (torch.rand(4, 3, 40, 40), r"data images 4..7 \(batch of shape \(4, 3, 40, 40\)\) are 40x40 with 3 channel\(s\), the images before them 32x32"),
    (torch.rand(4, 3, 4, 4), r"inputs of shape \(4, 3, 4, 4\) \(4x4 pixels\) are too small for the model"),
])
@pytest.mark.parametrize("scan", ["mine", "top_activations"])
def test_scanning_data_the_model_cannot_take_is_one_line(tmp_path: Path, batch: torch.Tensor, message: str, scan: str) -> None:
    """uint8 pixels, a NaN image (which would rank as the strongest winner), another size, too-small images."""
    from saliency_widget.analysis import top_activations

    model = shapes_cnn()
    data = [torch.rand(4, 3, 32, 32), batch] if batch.shape[-1] != 4 else [batch]
    with pytest.raises(InputError, match=message) as err:
        if scan == "mine":
            mine(model, data, ["features.relu4"], tmp_path, k=2, progress=False)
        else:
            top_activations(model, data, "features.relu4", k=2, progress=False)
    _one_line(err)


def test_a_nan_image_in_a_folder_is_named_by_its_file(tmp_path: Path) -> None:
    model = shapes_cnn()
    folder = _write(tmp_path / "data")
    base = describe_model(model).transform

    def poisoned(img: Image.Image) -> torch.Tensor:
        x = base(img)
        return x / 0 if img.getpixel((0, 0)) == Image.open(folder / "b" / "3.bmp").convert("RGB").getpixel((0, 0)) else x

    data = ImageFolderData(folder, poisoned)
    with pytest.raises(InputError, match=r"data image 3 \('b/3.bmp'\) holds NaN or Inf values") as err:
        mine(model, data, [LAYER], tmp_path / "index", k=2, batch_size=2, progress=False)
    _one_line(err)


# ---------------------------------------------------------------- more of the same spirit (found while probing)
def _tensor_data() -> torch.utils.data.TensorDataset:
    return torch.utils.data.TensorDataset(torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("limit", [0, -1, 2.5, True])
def test_mine_refuses_a_limit_that_is_not_a_positive_int(tmp_path: Path, limit: object) -> None:
    """``limit=0`` was ``KeyError: 'index'`` after the scan; 2.5 a TypeError."""
    with pytest.raises(InputError, match=rf"limit must be None \(every image\) or a positive int, got {limit!r}") as err:
        mine(shapes_cnn(), _tensor_data(), [LAYER], tmp_path, k=2, limit=limit, progress=False)  # type: ignore[arg-type]
    _one_line(err)


def test_mine_refuses_one_shot_and_shuffled_data(tmp_path: Path) -> None:
    """A generator was ``KeyError: 1`` in the projection pass; a shuffled DataLoader gave an index of other images."""
    gen = (b for b in [torch.rand(3, 3, 32, 32)])
    with pytest.raises(InputError, match="data is a one-shot generator; mining reads the data twice") as err:
        mine(shapes_cnn(), gen, [LAYER], tmp_path / "a", k=2, progress=False)
    _one_line(err)
    loader = torch.utils.data.DataLoader(_tensor_data(), batch_size=2, shuffle=True)
    with pytest.raises(InputError, match=r"DataLoader with a RandomSampler \(shuffle=True\)") as err:
        mine(shapes_cnn(), loader, [LAYER], tmp_path / "b", k=2, progress=False)
    _one_line(err)
    assert not (tmp_path / "b" / "manifest.json").exists()


@pytest.mark.parametrize("restart", [False, True])
@pytest.mark.parametrize("what", ["manifest", "layers"])
def test_mine_never_overwrites_or_deletes_a_folder_of_something_else(tmp_path: Path, what: str, restart: bool) -> None:
    """``--out`` pointed at a user's folder with its own manifest.json or layers/: refused, and --restart deletes nothing."""
    if what == "manifest":
        (tmp_path / "manifest.json").write_text('{"name": "my web app"}')
    else:
        (tmp_path / "layers").mkdir()
        (tmp_path / "layers" / "mine.txt").write_text("my notes")
    before = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    with pytest.raises(InputError, match="refusing to overwrite") as err:
        mine(shapes_cnn(), _tensor_data(), [LAYER], tmp_path, k=2, restart=restart, progress=False)
    _one_line(err)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == before


def test_mine_into_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "index").write_text("a file")
    with pytest.raises(InputError, match=r"--out '.*index' is a file; give a folder") as err:
        mine(shapes_cnn(), _tensor_data(), [LAYER], tmp_path / "index", k=2, progress=False)
    _one_line(err)


@pytest.mark.parametrize("config", ['{"config": 5}', '{"conf', ""])
def test_mining_never_resumes_checkpoints_whose_config_is_lost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: str) -> None:
    """A hand-edited or cut-short .mining/config.json: the checkpoints next to it are of an unknown run, so rescan."""
    model = shapes_cnn()
    folder = _write(tmp_path / "data")
    out = tmp_path / "index"
    _mine_until_first_checkpoint(monkeypatch, model, _write(tmp_path / "other", seed=3), out)  # other images: a stale checkpoint
    (out / ".mining" / "config.json").write_text(config)
    _mine(model, folder, out)
    fresh = tmp_path / "fresh"
    _mine(model, folder, fresh)
    assert _values(out) == _values(fresh)


def test_mine_refuses_an_index_inside_the_mined_folder(tmp_path: Path) -> None:
    folder = _write(tmp_path / "data")
    with pytest.raises(InputError, match=r"is inside the mined folder .*its patch PNGs would be mined") as err:
        _mine(shapes_cnn(), folder, folder / "index")
    _one_line(err)


def test_index_patch_symlinked_out_of_the_index_is_not_read(mined: Path, tmp_path: Path) -> None:
    """A shared index whose patch PNG is a symlink to a private file: the widget would read and show it."""
    out = _copy(mined, tmp_path)
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    patch = out / "patches" / LAYER / "c0000_0_img.png"
    patch.unlink()
    os.symlink(tmp_path / "secret.txt", patch)
    with pytest.raises(InputError, match=r"patch 'patches/features.relu1/c0000_0_img.png' resolves outside its folder") as err:
        load_index(out).patch_pngs(LAYER, 0)
    _one_line(err)


def test_cli_mine_after_an_image_was_edited_in_place_exits_2_with_one_line(mined: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from saliency_widget.cli import main

    folder = tmp_path / "data"
    shutil.copytree(mined.parent / "data", folder)
    argv = ["mine", "--data", str(folder), "--layers", LAYER, "--k", "2", "--batch-size", "2", "--out", str(tmp_path / "idx"), "--quiet"]
    assert main(argv) == 0
    capsys.readouterr()
    _edit_in_place(folder / "b" / "2.bmp", seed=11)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("saliency-widget: error: the data changed since") and err.count("\n") == 1
    assert main([*argv, "--restart"]) == 0


@pytest.mark.parametrize("scan", ["mine", "top_activations"])
def test_a_folder_of_mixed_image_sizes_is_one_line(tmp_path: Path, scan: str) -> None:
    """A transform without a resize: the DataLoader's collate raised ``RuntimeError: stack expects each tensor ...``."""
    from saliency_widget.analysis import top_activations

    (tmp_path / "data").mkdir()
    for i, side in enumerate([32, 32, 40, 32]):
        Image.fromarray(np.zeros((side, side, 3), np.uint8)).save(tmp_path / "data" / f"{i}.png")
    data = ImageFolderData(tmp_path / "data", lambda im: torch.from_numpy(np.asarray(im, np.float32) / 255).permute(2, 0, 1))
    with pytest.raises(InputError, match=r"data images 0..3 differ in size \(cannot stack them into one batch\)") as err:
        if scan == "mine":
            mine(shapes_cnn(), data, [LAYER], tmp_path / "idx", k=2, batch_size=4, progress=False)
        else:
            top_activations(shapes_cnn(), data, LAYER, k=2, batch_size=4, progress=False)
    _one_line(err)


@pytest.mark.parametrize("data", [[], torch.utils.data.TensorDataset(torch.rand(0, 3, 32, 32))])
def test_mining_no_images_is_one_line(tmp_path: Path, data: object) -> None:
    """Was ``KeyError: 'index'`` after an empty scan."""
    with pytest.raises(InputError, match=r"data yielded no images \(len 0\)") as err:
        mine(shapes_cnn(), data, [LAYER], tmp_path, k=2, progress=False)  # type: ignore[arg-type]
    _one_line(err)


@pytest.mark.parametrize(("kw", "message"), [
    ({"layers": LAYER}, "layers must be a list of layer keys, got the single key 'features.relu1'"),
    ({"mean": [0.5] * 3, "std": [0.0] * 3}, "mean and std must both be None or sequences"),
    ({"mean": [0.5] * 3, "std": None}, "mean and std must both be None or sequences"),
    ({"mean": [0.5] * 3, "std": [0.2] * 2}, "mean and std must both be None or sequences"),
    ({"mean": "abc", "std": "abc"}, "mean and std must both be None or sequences"),
])
def test_mine_bad_arguments_are_one_line(tmp_path: Path, kw: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"layers": [LAYER], **kw}
    with pytest.raises(InputError) as err:
        mine(shapes_cnn(), _tensor_data(), out=tmp_path, k=2, progress=False, **args)  # type: ignore[arg-type]
    assert message in _one_line(err)


def test_mine_a_layer_named_twice_mines_it_once(tmp_path: Path) -> None:
    index = mine(shapes_cnn(), _tensor_data(), [LAYER, LAYER], tmp_path, k=2, progress=False)
    assert index.layers == [LAYER]


def test_load_index_on_a_file_says_so(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(b"png")
    with pytest.raises(InputError, match="is a file, not an index directory"):
        load_index(tmp_path / "x.png")


def test_a_second_mining_run_on_one_out_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    """A second user (or terminal) mining into the same --out: its checkpoints and the first run's would mix."""
    import fcntl

    from saliency_widget.analysis.runfolder import LOCK_NAME

    tmp_path.mkdir(exist_ok=True)
    fd = os.open(tmp_path / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # "the first run" (its own open file: a conflicting flock)
        os.write(fd, b"4242@elsewhere")
        with pytest.raises(InputError, match=r"another mining run \(process 4242@elsewhere\) is writing to") as err:
            mine(shapes_cnn(), _tensor_data(), [LAYER], tmp_path, k=2, progress=False)
        _one_line(err)
        assert not (tmp_path / ".mining").exists()
    finally:
        os.close(fd)
    index = mine(shapes_cnn(), _tensor_data(), [LAYER], tmp_path, k=2, progress=False)  # the first is gone: runs
    assert index.layers == [LAYER] and (tmp_path / LOCK_NAME).read_bytes() == b""


@pytest.mark.parametrize("patch", ["bomb", "not-png", "truncated"])
def test_index_patch_that_is_not_its_receptive_field_png_is_refused_before_decoding(mined: Path, tmp_path: Path, patch: str) -> None:
    """A shared index with a decompression bomb (or any other file) as a patch: refused from its header, one line."""
    out = _copy(mined, tmp_path)
    f = out / "patches" / LAYER / "c0001_0_proj.png"
    if patch == "bomb":
        Image.new("1", (20000, 20000)).save(f)  # a few KB on disk, 1.2 GB as RGB
    elif patch == "not-png":
        f.write_text("<svg onload=alert(1)>")
    else:
        f.write_bytes((out / "patches" / "features.relu1" / "c0001_0_img.png").read_bytes()[:20])
    with pytest.raises(InputError, match=r"patch 'patches/features.relu1/c0001_0_proj.png' is not the \d+x\d+ PNG of its receptive field") as err:
        load_index(out).grid_png(LAYER, 1)
    _one_line(err)


def test_a_checkpoint_without_this_runs_state_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint of another version (or a hand-made one) under the same config: not a KeyError mid-resume."""
    model = shapes_cnn()
    folder = _write(tmp_path / "data")
    out = tmp_path / "index"
    _mine_until_first_checkpoint(monkeypatch, model, folder, out)
    torch.save({"next_batch": 1}, out / ".mining" / "rank0of1.pt")
    with pytest.raises(InputError, match=r"checkpoint '.*rank0of1.pt' does not hold this run's state \(KeyError") as err:
        _mine(model, folder, out)
    _one_line(err)
