"""``mine --featviz``: each mined filter's feature visualization in the index, equal to ``visualize``'s."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from saliency_widget import objectives as obj
from saliency_widget import visualize
from saliency_widget.analysis import load_index
from saliency_widget.cli import main
from saliency_widget.models import shapes_cnn
from saliency_widget.viz.featviz_page import to_pil

LAYER = "features.relu2"  # 32 filters


def _mine(out: Path, *extra: str) -> list[str]:
    return ["mine", "--data", "sample:shapes", "--limit", "4", "--layers", LAYER, "--k", "2", "--batch-size", "4",
            "--out", str(out), "--quiet", *extra]


def test_mine_featviz_writes_one_visualization_per_filter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_mine(tmp_path / "idx", "--featviz", "--featviz-steps", "2")) == 0
    assert "wrote the feature visualizations of 32 filter(s)" in capsys.readouterr().out
    index = load_index(tmp_path / "idx")
    chans = index.channels(LAYER)
    assert chans == list(range(32))
    vis = visualize(shapes_cnn(), [obj.channel(LAYER, c) for c in chans], steps=2, size=64, seed=0)
    for c in chans:
        raw = index.featviz_png(LAYER, c)
        assert raw is not None
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(raw))), np.asarray(to_pil(vis, c)))
    meta = json.loads((tmp_path / "idx" / "featviz" / "featviz.json").read_text())
    assert meta["settings"] == {"steps": 2, "size": 64, "param": "fourier", "seed": 0, "transforms": "standard"}
    assert meta["layers"][LAYER]["channels"] == chans
    np.testing.assert_allclose(meta["layers"][LAYER]["values"], vis.values.tolist(), rtol=1e-6)


def test_mine_without_featviz_writes_none(tmp_path: Path) -> None:
    assert main(_mine(tmp_path / "idx")) == 0
    assert not (tmp_path / "idx" / "featviz").exists()
    assert load_index(tmp_path / "idx").featviz_png(LAYER, 0) is None


def test_bad_featviz_steps_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_mine(tmp_path / "idx", "--featviz", "--featviz-steps", "0")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--featviz-steps must be at least 1, got 0" in err
