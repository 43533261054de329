"""A long interactive export says what it computes, how big the page gets and how far it is (issue 29, item 8)."""

from __future__ import annotations

import re

import saliency_widget as sw
from saliency_widget.viz.bundle import Packer
from saliency_widget.viz.interactive import collect_image, export_estimate
from tests.helpers import seeded_randn
from tests.nets import small_cnn


def _explainer() -> sw.Explainer:
    return sw.Explainer(small_cnn(), seeded_randn(1, 3, 16, 16, seed=0))


def test_estimate_counts_the_maps_and_projections_and_bounds_the_size() -> None:
    # 2 methods x 2 classes = 4 maps; features.4 (6 x 8 x 8): 2 filters x (1 + 1x1 grid) x 1 rule = 4 projections;
    # raw = 8 x 16 x 16 x 4 bytes + 2 x 8 x 8 feature bytes = 8320, page 0.2..1 x 4/3 of it
    line = export_estimate(_explainer(), ["gradient", "occlusion"], 2, ["features.4"], [0, 1], 1, 1, {}, "img")
    assert line == "img: 4 maps and 4 projections of 16x16 px to compute; the page will be about 0.0-0.0 MB"


def test_estimate_over_budget_gives_the_advice() -> None:
    ex = sw.Explainer(small_cnn(), seeded_randn(1, 3, 224, 224, seed=0))
    line = export_estimate(ex, ["gradient", "smoothgrad", "occlusion"], 5, ["features.1", "features.4"], None, 2, 1, {}, "img")
    # 15 maps; (4 + 6 filters) x (1 + 4) = 50 projections; raw 65 x 224 x 224 x 4 + 4 x 224^2 + 6 x 112^2 = 13.32 MB,
    # page 0.2 x 4/3 x raw = 3.6 MB to 4/3 x raw = 17.8 MB
    assert line.startswith("img: 15 maps and 50 projections of 224x224 px to compute; the page will be about 3.6-17.8 MB (may be over the 5 MB budget)")
    assert "fewer methods=[...], layers=[...] or channels=[...]" in line and "docs/reports.md" in line


def test_export_progress_lines_are_numbered_after_the_estimate() -> None:
    lines: list[str] = []
    collect_image(_explainer(), Packer(), name="img", methods=["gradient", "occlusion"], topk=2, layers=["features.4"],
                  channels=[0, 1], progress=lines.append)
    assert lines[0].startswith("img: 4 maps and 2 projections")
    steps = [re.match(r"\[(\d+)/(\d+), \d+ s\] ", line) for line in lines[1:]]
    assert all(steps) and [(int(m[1]), int(m[2])) for m in steps if m] == [(1, 3), (2, 3), (3, 3)]


def test_estimate_says_over_when_even_the_low_end_is() -> None:
    ex = sw.Explainer(small_cnn(), seeded_randn(1, 3, 224, 224, seed=0))
    line = export_estimate(ex, ["gradient", "smoothgrad", "occlusion"], 5, ["features.1", "features.4"], None, 8, 1, {}, "img")
    # 15 maps; (4 + 6 filters) x (1 + 64) = 650 projections: the low end alone is over 5 MB
    assert "(over the 5 MB budget): for a smaller, faster page" in line and "may be" not in line
