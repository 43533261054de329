"""What one explorer view shows, computed: :class:`ViewResult`, its compare tiles, and the panels side by side.

A :class:`ViewResult` holds raw maps (:class:`~.rawmap.RawMap`) and draws them with any
display options (:meth:`ViewResult.render`, :meth:`ViewResult.png`), so the widget, the offline
page and the exports show the same pixels; :func:`view_png` puts a view's panels in one PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..viz import render as R
from ..viz.colorbar import colorbar, with_colorbar
from .compare import compare_grid
from .options import DisplayOptions
from .rawmap import RawMap, Rendered
from .snapshot import Snapshot

__all__ = ["COMPARE_ROW", "PANEL", "CompareTile", "ViewResult", "view_png"]

PANEL = 224  # display size (px) of the image panels
COMPARE_ROW = 5  # tiles per row of the compare view

@dataclass(frozen=True)
class CompareTile:
    """One method's tile of the compare view: its raw map (drawn by whoever shows it), or why there is none.

    Attributes
    ----------
    method, label
        Registered name and human label of the method.
    raw
        The map's planes, or None when the method cannot run on this model.
    message
        Why ``raw`` is None, else None.
    """

    method: str
    label: str
    raw: RawMap | None
    message: str | None


@dataclass(frozen=True)
class ViewResult:
    """Everything one view shows, computed from one :class:`Snapshot`.

    Attributes
    ----------
    snapshot
        The state it was computed from.
    target
        The explained class (the predicted one when ``snapshot.target`` is None).
    probs
        ``(K,)`` class probabilities.
    bars
        ``(class index, bar name, probability)`` of each bar, most probable first; the
        target always has a bar.
    panels
        PNG bytes per panel: ``input`` (with the receptive-field box) and ``feature`` (the
        compare view's tiles are raw maps, :attr:`compare`).
    maps
        The raw ``map`` and ``projection`` (when computed): drawn with any display options by
        :meth:`render`, by the widget's front end and by the offline page alike.
    messages
        Per panel, why there is no map at all (a method this model cannot run), else None.
    method_label, class_label
        Human names of the method and the target class.
    grid
        ``(h, w)`` of the feature map.
    position
        ``(y, x)`` of the projected activation (the strongest when none was clicked).
    feature_caption
        Text under the feature map.
    projection_rule
        ReLU rule the projection used.
    projection_note
        Why the projection does not use DeconvNet's rule when the model has no ReLU ("" otherwise).
    box
        Receptive field ``(y0, x0, y1, x1)`` of the projected activation; None when the probe
        that measures it failed (the input panel then shows no box).
    warnings
        First lines of the warnings raised while computing.
    ms
        Wall time in milliseconds.
    """

    snapshot: Snapshot
    target: int
    probs: np.ndarray
    bars: tuple[tuple[int, str, float], ...]
    panels: dict[str, bytes]
    messages: dict[str, str | None]
    method_label: str
    class_label: str
    grid: tuple[int, int]
    position: tuple[int, int]
    feature_caption: str
    projection_rule: str
    projection_note: str
    box: tuple[int, int, int, int] | None
    warnings: tuple[str, ...] = ()
    ms: float = 0.0
    box_note: str = ""
    """Why there is no receptive-field box ("" when there is one)."""
    maps: dict[str, RawMap] = field(default_factory=dict)
    """The raw ``map`` and ``projection``, sent once; every display option is applied to them."""
    base: np.ndarray | None = None
    """``(H, W, 3)`` uint8 input image (without the box), what an overlay is drawn over."""
    compare: tuple[CompareTile, ...] = ()
    """The compare view's tiles, every method's raw map (empty in the single view)."""

    def compare_png(self, options: DisplayOptions) -> bytes | None:
        """The compare view drawn with ``options`` as one PNG, each tile with its own colour scale (None: no compare view)."""
        if not self.compare:
            return None
        tiles = []
        for t in self.compare:
            r = t.raw.render(options, self.base) if t.raw is not None else Rendered(None, t.message, 0.0, options.shown_cmap)
            tiles.append(  # each tile with its own scale: the methods' value ranges differ by orders of magnitude
                with_colorbar(r.rgb, options.sign, r.vmax, options.cmap, height=PANEL - 64)
                if r.rgb is not None else R.message_panel(r.message or "", (PANEL - 64 + 26, PANEL - 64))
            )
        titles = [t.label.replace("×", "x") for t in self.compare]  # the PNG font has no ×
        return R.to_png(compare_grid(tiles, titles, per_row=COMPARE_ROW, height=PANEL - 64 + 26))

    def render(self, panel: str, options: DisplayOptions) -> Rendered:
        """The ``map`` or ``projection`` panel drawn with ``options`` (its message when there is no map)."""
        raw = self.maps.get(panel)
        if raw is None:
            return Rendered(None, self.messages.get(panel) or "no map", 0.0, options.shown_cmap)
        return raw.render(options, self.base)

    def png(self, panel: str, options: DisplayOptions) -> tuple[bytes | None, str | None]:
        """``(PNG, None)`` of a panel drawn with ``options`` (maps) or as computed (others), or ``(None, message)``."""
        if panel not in ("map", "projection"):
            return self.panels.get(panel), self.messages.get(panel)
        r = self.render(panel, options)
        return (R.to_png(r.rgb), None) if r.rgb is not None else (None, r.message)

    def colorbar(self, panel: str, options: DisplayOptions, width: int = PANEL) -> bytes | None:
        """PNG colour scale of a map panel drawn with ``options`` (None without image)."""
        r = self.render(panel, options)
        return R.to_png(colorbar(options.sign, r.vmax, options.cmap, width=width)) if r.rgb is not None else None

    @property
    def probability(self) -> float:
        """Probability of the target class."""
        return float(self.probs[self.target])

    @property
    def selected_bar(self) -> int:
        """Rank of the target's bar."""
        return [b[0] for b in self.bars].index(self.target)


def view_png(
    panels: dict[str, bytes], messages: dict[str, str | None], titled: Sequence[tuple[str, str]],
    scales: dict[str, tuple[str, float, str]] | None = None,
) -> bytes:
    """The panels of a view side by side in one PNG, for export and saved notebooks.

    Parameters
    ----------
    panels, messages
        As in :class:`ViewResult` (a panel without image shows its message).
    titled
        ``(panel, title)`` in display order; panels with neither image nor message are skipped.
    scales
        ``{panel: (sign, vmax, cmap)}`` of the map panels with an image: each is drawn with its
        colour scale below (:func:`~saliency_widget.viz.colorbar.with_colorbar`, as the widget
        and ``to_html`` show it); the other panels get blank space of the scale's height.

    Returns
    -------
    bytes
        The PNG; "nothing rendered yet" when no panel shows.
    """
    shown = [(key, title) for key, title in titled if panels.get(key) or messages.get(key)]
    tiles = [R.panel_or_message(panels.get(key), messages.get(key), (PANEL, PANEL)) for key, _ in shown]
    titles = [title for _, title in shown]
    if not tiles:
        tiles, titles = [R.message_panel("nothing rendered yet", (PANEL, PANEL))], [""]
    if not scales:
        return R.to_png(R.compose(tiles, titles, height=PANEL))
    scaled = [_over_scale(tile, scales.get(key)) for tile, (key, _) in zip(tiles, shown, strict=True)]
    return R.to_png(R.compose(scaled, titles, height=scaled[0].shape[0]))


def _over_scale(tile: np.ndarray, scale: tuple[str, float, str] | None) -> np.ndarray:
    """``tile`` at :data:`PANEL` rows over its colour scale ``(sign, vmax, cmap)``, or over blank rows as high."""
    if scale is not None:
        return with_colorbar(tile, *scale, height=PANEL)
    big = R.compose([tile], height=PANEL, gap=0)
    return np.concatenate([big, np.full((colorbar("absolute", 1.0).shape[0], big.shape[1], 3), 255, np.uint8)])
