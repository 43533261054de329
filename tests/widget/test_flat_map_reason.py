"""The explorer names a map with one value everywhere instead of drawing one flat colour (issue 28, timm RepVGG)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from saliency_widget.widget import explore
from tests.engine.test_degenerate import MeanNet, SameTokens


@pytest.mark.parametrize(
    ("net", "image", "method"),
    [
        (MeanNet(), torch.ones(1, 32, 32), "occlusion"),  # timm RepVGG: no patch moves the score more than another
        (SameTokens(), (torch.arange(1024.0) / 1024).reshape(1, 32, 32), "gradcam"),  # timm LeViT: identical tokens
    ],
    ids=["occlusion-of-a-mean", "gradcam-on-identical-positions"],
)
def test_flat_map_shows_a_one_line_reason(net: nn.Module, image: torch.Tensor, method: str) -> None:
    w = explore(net, image)
    try:
        w.method = method
        assert w.wait(120)
        rec = w.render_log[-1]
        assert rec.state["method"] == method and rec.error is None
        assert not rec.nonblank["map"]  # one value everywhere: drawn, it would be a blank panel
        assert w.messages["map"] == "the map's magnitude is the same at every pixel; nothing to show"
        assert f"warning: {method}: the map has one value everywhere" in w.status
    finally:
        w.close()
