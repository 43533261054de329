"""The explorer names a map with one value everywhere instead of drawing one flat colour (issue 28, timm RepVGG)."""

from __future__ import annotations

import torch

from saliency_widget.widget import explore
from tests.engine.test_degenerate import MeanNet


def test_flat_occlusion_map_shows_a_one_line_reason() -> None:
    w = explore(MeanNet(), torch.ones(1, 32, 32))
    try:
        w.method = "occlusion"
        assert w.wait(120)
        rec = w.render_log[-1]
        assert rec.state["method"] == "occlusion" and rec.error is None
        assert not rec.nonblank["map"]  # one value everywhere: drawn, it would be a blank panel
        assert w.messages["map"] == "the map's magnitude is the same at every pixel; nothing to show"
        assert "warning: occlusion: the map has one value everywhere" in w.status
    finally:
        w.close()
