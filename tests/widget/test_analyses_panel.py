"""The analyses panel: which data top-9 scans (and says so), HTML tables, no empty picture, errors clear it."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from saliency_widget.analysis import TopActivations
from saliency_widget.widget import explore
from saliency_widget.widget.analyses import AnalysisPanel
from saliency_widget.widget.datasource import choose_data
from tests.helpers import LABELS, SIDE, encode, rgb_image, seeded_rand, to_tensor
from tests.nets import small_cnn

LAYER = "features.1"


def panel(data: object = None) -> AnalysisPanel:
    p = AnalysisPanel(small_cnn(), data=data, transform=to_tensor)
    p.w_layer.value = LAYER
    return p


def images(n: int) -> torch.Tensor:
    return seeded_rand(n, 3, SIDE, SIDE, seed=5) - 0.5


def test_foreign_model_without_data_scans_nothing_and_says_how() -> None:
    p = panel()
    assert "no data chosen" in p.w_data_note.value and "explore(model, data=" in p.w_data_note.value
    assert p.run("topk") is None
    assert "no data chosen" in p.w_out_html.value and p.w_out_img.layout.display == "none"


@pytest.mark.parametrize(
    ("data", "note", "count"),
    [
        (images(5), "the tensor passed to explore() (5 images)", 5),
        (TensorDataset(images(6), torch.zeros(6)), "the TensorDataset passed to explore() (6 images)", 6),
        (DataLoader(TensorDataset(images(7)), batch_size=3), "the DataLoader passed to explore() (7 images)", 7),
    ],
)
def test_given_data_is_scanned_and_named(data: object, note: str, count: int) -> None:
    p = panel(data)
    assert f"top-9 scans: {html.escape(note)}" in p.w_data_note.value
    res = p.run("topk")
    assert isinstance(res, TopActivations) and res.images_seen == count
    assert p.w_out_img.layout.display == "" and bytes(p.w_out_img.value)[:4] == b"\x89PNG"
    assert f"data: {html.escape(note)}" in p.w_out_html.value


def test_a_folder_typed_in_the_panel(tmp_path: Path) -> None:
    for i in range(3):
        (tmp_path / f"im{i}.png").write_bytes(encode(rgb_image(i)))
    (tmp_path / "notes.txt").write_text("not an image")
    p = panel()
    p.w_data.value = "folder"
    assert p.w_folder.layout.display == ""
    p.w_folder.value = str(tmp_path)
    assert html.escape(f"folder {str(tmp_path)!r} (3 images)") in p.w_data_note.value
    res = p.run("topk")
    assert isinstance(res, TopActivations) and res.images_seen == 3


def test_a_new_error_clears_the_old_grid(tmp_path: Path) -> None:
    p = panel(images(4))
    p.run("topk")
    assert p.w_out_img.value
    p.w_data.value = "folder"
    p.w_folder.value = str(tmp_path / "missing")
    assert "is not a folder" in p.w_data_note.value
    assert p.run("topk") is None
    assert p.w_out_img.value == b"" and p.w_out_img.layout.display == "none"
    assert "is not a folder" in p.w_out_html.value and p.result is None


def test_bundled_model_defaults_to_the_bundled_scenes() -> None:
    p = AnalysisPanel(dataset_size=8)
    assert "top-9 scans: bundled shape scenes (8 images, seed 2024)" in p.w_data_note.value
    assert [k for _, k in p.w_data.options] == ["bundled", "folder"]


def test_bad_data_type_names_the_choices() -> None:
    with pytest.raises(Exception, match="folder path, a torch Dataset, a DataLoader"):
        choose_data(small_cnn(), given=42)


@pytest.fixture
def explorer_with_data() -> Iterator[object]:
    w = explore(small_cnn(), rgb_image(0), labels=LABELS, transform=to_tensor, data=images(3))
    try:
        yield w
    finally:
        w.close()


def test_explore_data_reaches_the_panel_and_sanity_uses_the_image(explorer_with_data: object) -> None:
    w = explorer_with_data
    w.w_analyses.selected_index = 0  # type: ignore[attr-defined]
    p = w.analysis_panel  # type: ignore[attr-defined]
    assert html.escape("the tensor passed to explore() (3 images)") in p.w_data_note.value
    w.method = "guided_backprop"  # type: ignore[attr-defined]
    assert p.w_sanity_method.value == "guided_backprop"  # the panel runs the explorer's method
    results = p.run("sanity")
    assert [r.method for r in results] == ["guided_backprop"]
    assert results[0].maps.shape[1] == 1  # one image: the explorer's
    out = p.w_sanity_html.value
    assert p.w_sanity_img.layout.display == "" and "<table" in out and "| original |" not in out and "the explorer&#x27;s image" in out
