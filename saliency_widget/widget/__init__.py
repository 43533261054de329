"""The interactive explorer widget and the map -> RGB rendering it uses."""

from __future__ import annotations

from .canvas import FeatureMapCanvas, esm_path
from .explorer import Explorer, RenderRecord, explore

__all__ = ["Explorer", "FeatureMapCanvas", "RenderRecord", "esm_path", "explore"]
