"""The CLI's site over 256 scenes: every file the manifest names exists, inside the site, with the right content."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from saliency_widget.analysis import load_index
from saliency_widget.atlas import FORMAT, site_size

from .conftest import CHANNELS, LAYERS, SCENES

pytestmark = pytest.mark.slow


def test_manifest_lists_every_filter_with_files_inside_the_site(site: Path) -> None:
    man = json.loads((site / "atlas.json").read_text())
    assert man["format"] == FORMAT and list(man["layers"]) == list(LAYERS) and man["data"]["images"] == SCENES
    assert man["index"] == "index" and man["featviz"] == {"steps": 4, "size": 48, "param": "fourier", "seed": 0, "transforms": True}
    idx = load_index(site / "index")
    for key, layer in man["layers"].items():
        assert [f["index"] for f in layer["filters"]] == list(range(CHANNELS[key]))
        for f in layer["filters"]:
            assert len(f["top"]) == len(f["projections"]) == 9 and len(set(f["top"])) == 9
            for rel in [*f["top"], *f["projections"], f["visualization"], f["page"]]:
                assert not rel.startswith("/") and ".." not in rel
                assert (site / rel).is_file(), rel
            assert [r.image for r in idx.top(key, f["index"])] == [int(n.rsplit("#", 1)[1]) for n in f["images"]]
            assert sum(f["histogram"]["counts"]) == SCENES
            # the top-9 are the 9 largest per-image maxima: all in the histogram's last bins, the first at its right edge
            assert f["values"][0] == pytest.approx(f["histogram"]["edges"][-1], rel=1e-5)


def test_pages_link_only_inside_the_site(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) == 1 + len(LAYERS) + sum(CHANNELS.values())
    for page in pages:
        text = page.read_text()
        assert "http-equiv='Content-Security-Policy'" in text and "default-src 'none'" in text
        for ref in re.findall(r"(?:src|href)='([^']*)'", text):
            assert not re.match(r"^[a-z]+:", ref), (page, ref)  # no scheme: no URL leaves the folder
            assert (page.parent / ref).resolve().is_relative_to(site.resolve()) and (page.parent / ref).resolve().is_file(), (page, ref)


def test_size_is_small(site: Path) -> None:
    assert site_size(site) < 5_000_000  # 2 small layers of 256 scenes; the 2-layer budget of the bundled model is 60 MB
