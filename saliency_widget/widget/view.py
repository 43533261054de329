"""The explorer's controls and layout, and how a computed view is shown in them.

:class:`ExplorerView` owns every ipywidget of the explorer. It knows nothing about models or
state: the explorer links its controls to traitlets and calls :meth:`ExplorerView.show` with
each :class:`~saliency_widget.views.pipeline.ViewResult`, or :meth:`ExplorerView.show_error`.
"""

from __future__ import annotations

import html
import itertools
import traceback
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import bqplot as bq
import ipywidgets as W
import numpy as np
from ipywidgets.widgets.widget_description import DescriptionWidget

from ..engine import get_method, method_label
from ..errors import SaliencyError
from ..views.options import display_specs
from ..views.pipeline import COMPARE_ROW, PANEL, ViewResult
from ..views.settings import MethodSettings, setting_specs
from ..viz import render as R
from .canvas import FeatureMapCanvas
from .channelgrid import ChannelGrid
from .mapcanvas import CompareCanvas, MapCanvas
from .optionwidgets import option_control
from .style import EXPLORER_CSS
from .texts import (
    RECEPTIVE_NOTE,
    busy_text,
    map_title,
    message_html,
    one_line,
    projection_title,
    source_html,
    source_name,
    status_html,
    two_lines,
)

WidgetT = TypeVar("WidgetT", bound=W.DOMWidget)

# The texts are re-exported: the explorer, the export and the tests read them from here.
__all__ = [
    "ExplorerView", "busy_text", "fill_tooltips", "map_title", "one_line", "projection_title",
    "source_html", "status_html", "two_lines",
]

_SCOPES = itertools.count()  # one CSS scope per explorer (its unavailable-method rules)

def fill_tooltips(widget: W.Widget) -> None:
    """Give every described widget under ``widget`` a tooltip string ("" where none was set).

    ipywidgets 8 copies ``tooltip`` into the label's ``title``: ``None`` becomes the tooltip
    "null" on every HTML text, caption and progress bar.
    """
    if isinstance(widget, DescriptionWidget) and widget.tooltip is None:
        widget.tooltip = ""
    for child in getattr(widget, "children", ()):
        if isinstance(child, W.Widget):
            fill_tooltips(child)


def _caption(text: str, detail: str = "") -> W.HTML:
    inner = f"<b>{html.escape(text)}</b>" + (f" <span class='sw-detail'>{html.escape(detail)}</span>" if detail else "")
    return _classed(W.HTML(two_lines(inner, f"{text} {detail}".strip())), "sw-title2")


def _classed(widget: WidgetT, *classes: str) -> WidgetT:
    for c in classes:
        widget.add_class(c)
    return widget


class ExplorerView:
    """Controls, layout and panels of the explorer.

    Parameters
    ----------
    methods
        Registered method names, in toggle order (shown by their human labels).
    samples
        Names of the bundled sample images offered in the dropdown.
    """

    def __init__(self, methods: Sequence[str], samples: Sequence[str]) -> None:
        lay = W.Layout
        # Sizes come from the stylesheet (style.py): panels grow with the width, lines have a fixed height.
        square = {"width": f"{PANEL}px", "height": f"{PANEL}px", "object_fit": "contain"}
        self.w_method = W.ToggleButtons(
            options=[(method_label(m), m) for m in methods],
            tooltips=[get_method(m).description for m in methods],  # one line each: what it shows, its paper
            description="method",
            tooltip="the attribution method of the map (hover a button: what it shows, its paper)",
            style={"button_width": "auto"},
        )
        self.w_method.add_class("sw-method")
        self.w_view = W.ToggleButtons(
            options=[("single", "single"), ("compare all", "compare")], description="view", style={"button_width": "auto"},
            tooltip="one method, or every method side by side", tooltips=["the selected method", "every method side by side"],
        )
        self.w_view.add_class("sw-view")
        self.w_sample = W.Dropdown(
            options=[("(sample)", "")] + [(n, n) for n in samples], description="sample", layout=lay(width="190px"),
            tooltip="a bundled image that fits this model",
        )
        self.w_sample.add_class("sw-sample")
        self.w_upload = W.FileUpload(accept="image/png,image/jpeg,.png,.jpg,.jpeg", multiple=False, description="upload",
                                     tooltip="explain your own PNG or JPEG image")
        self.w_upload.add_class("sw-upload")
        # What was loaded (file name, size) or why not, next to the button that caused it.
        self.w_source = _classed(W.HTML("", layout=lay(width="230px")), "sw-source")
        self.w_export = W.Button(description="export PNG", icon="download", tooltip="download the current view as a PNG file")
        self.w_export.add_class("sw-export")

        self.w_input = _classed(W.Image(format="png", layout=lay(**square)), "sw-input-image", "sw-square")
        # The maps arrive raw (binary planes) and are drawn in the browser with the display
        # options, colour scale included (js/map_view.js); see mapcanvas.py.
        self.w_map = _classed(MapCanvas(size=PANEL), "sw-map-image", "sw-mapcanvas")
        self.w_input_note = _classed(W.HTML(layout=lay(width=f"{PANEL}px", height="22px")), "sw-input-note", "sw-line")
        self.w_map_msg = _classed(W.HTML(layout=lay(width=f"{PANEL}px", height="22px")), "sw-map-message", "sw-line")
        self.w_map_title = _classed(W.HTML(), "sw-map-title", "sw-title2")
        # every method's raw map, drawn in the browser like the main map (js/compare_view.js)
        self.w_compare = CompareCanvas(columns=COMPARE_ROW, tile_size=PANEL - 64, layout=lay(display="none"))
        self.w_compare.add_class("sw-compare-image")

        self._xs = bq.OrdinalScale(reverse=True)  # the most probable class on top
        self._ys = bq.LinearScale(min=0.0, max=1.0)
        self.w_bars = bq.Bars(
            # Stacked with the remainder 1 - p (light grey) so every row is a full-width
            # click target: a confident model gives the other classes ~1e-7 wide bars.
            x=["-"], y=[[0.0], [1.0]], type="stacked", scales={"x": self._xs, "y": self._ys},
            orientation="horizontal", colors=["#4c78a8", "#e8e8e8"], interactions={"click": "select"},
            selected_style={"stroke": "#f58518", "stroke-width": "3"}, unselected_style={},
            tooltip=bq.Tooltip(fields=["x"], labels=["class · probability"]),
        )
        self.w_bars_fig = bq.Figure(
            marks=[self.w_bars],
            axes=[bq.Axis(scale=self._xs, side="left"), bq.Axis(scale=self._ys, side="bottom", tick_format=".1%", num_ticks=3)],
            fig_margin={"top": 4, "bottom": 26, "left": 170, "right": 20},
            layout=lay(width="400px", height="240px"), title="",
        )
        self.w_bars_fig.add_class("sw-bars")

        # One control per display option and per method setting, generated from their specs
        # (views/options.py, views/settings.py); ``w_<name>`` reaches each (see __getattr__).
        self.option_controls: dict[str, W.ValueWidget] = {s.name: option_control(s) for s in display_specs()}
        self.setting_controls: dict[str, W.ValueWidget] = {s.name: option_control(s) for s in setting_specs()}
        self._setting_specs = {s.name: s for s in setting_specs()}
        self.setting_controls["cam_layer"].layout.width = "360px"
        self.w_settings = _classed(W.HBox(list(self.setting_controls.values())), "sw-row", "sw-settings")
        # how they look here: widths; the colormap menu follows the sign (signed -> a diverging colormap)
        self.w_clip.layout.width, self.w_alpha.layout.width = "210px", "170px"
        self.w_sign.layout.width, self.w_cmap.layout.width = "150px", "225px"
        self._cmap_before_signed: str | None = None
        self.w_sign.observe(self._on_sign, names="value")
        self.w_cmap.observe(lambda _c: self._cmap_note(), names="value")

        self.w_layer = W.Dropdown(
            options=[], description="layer", layout=lay(width="360px"),
            tooltip="the layer whose feature map is shown ('#2': its second call when a module runs more than once)",
        )
        self.w_layer.add_class("sw-layer")
        self.w_all_layers = W.Checkbox(
            value=False, description="all layers", indent=False, layout=lay(width="140px"),
            tooltip="also list the layers that pass their input through unchanged (Identity; Dropout and DropPath in eval mode)",
        )
        self.w_all_layers.add_class("sw-all-layers")
        self._layers: list[tuple[str, str]] = []
        self._noop: set[str] = set()
        self.w_all_layers.observe(lambda _c: self._fill_layers(), names="value")
        self.w_channel = W.IntSlider(value=0, min=0, max=0, description="filter", continuous_update=True, layout=lay(width="250px"),
                                    tooltip="the filter (channel) of the layer shown as the feature map")
        self.w_channel.add_class("sw-filter")
        self.w_strongest = W.Button(description="strongest", tooltip="jump to the filter's largest activation")
        self.w_strongest.add_class("sw-strongest")
        self.w_canvas = FeatureMapCanvas(size=PANEL)
        self.w_canvas.add_class("sw-feature-map")
        self.w_proj = _classed(MapCanvas(size=PANEL), "sw-projection-image", "sw-mapcanvas")
        for canvas in (self.w_map, self.w_proj, self.w_compare):
            canvas.link_controls(self.option_controls)
        self.w_proj_msg = _classed(W.HTML(layout=lay(width=f"{PANEL}px", height="22px")), "sw-projection-message", "sw-line")
        self.w_proj_title = _classed(
            W.HTML(two_lines("<b>projection to pixel space</b>", "projection to pixel space")), "sw-projection-title", "sw-title2",
        )

        self.w_channels = ChannelGrid()
        self.w_channels.add_class("sw-channel-grid")
        # A click on a thumbnail selects that filter (the slider, and through it the explorer's channel);
        # the grid marks whatever filter the slider shows.
        self.w_channels.observe(self._on_channel_click, names="click")
        self.w_channel.observe(lambda c: setattr(self.w_channels, "selected", int(c["new"])), names="value")

        self.w_status = W.HTML(layout=lay(flex="1 1 auto", min_width="0"))
        self.w_status.add_class("sw-status")
        self.w_style = W.HTML(EXPLORER_CSS, layout=lay(height="0px", overflow="hidden"))
        # Per-explorer rules (which method buttons look unavailable), scoped by a class of their own.
        self._scope = f"sw-e{next(_SCOPES)}"
        self.w_method.add_class(self._scope)
        self.w_rules = W.HTML("", layout=lay(height="0px", overflow="hidden"))
        self.unavailable: list[str] = []  # methods this model cannot run (set_method_notes)
        self.w_progress = W.FloatProgress(value=0.0, min=0.0, max=1.0, description="", layout=lay(display="none", width="220px"))
        self.w_progress.add_class("sw-progress")
        self.busy = False
        self.w_trace = W.HTML()
        self.w_trace_box = W.Accordion(children=[self.w_trace], titles=("details",), selected_index=None, layout=lay(display="none"))
        self.w_trace_box.add_class("sw-traceback")
        # Analyses (top-9 per filter, sanity check, pointing game) are built on first open:
        # they cost nothing until a user asks for them.
        self.w_analyses = W.Accordion(
            children=[W.HTML("")], titles=("analyses: top-9 per filter · faithfulness · sanity check · pointing game",), selected_index=None
        )
        # The explorer puts its feature-visualization panel (widget/featpanel.py) here.
        self.w_featviz = W.VBox([])

    def __getattr__(self, name: str) -> Any:
        # ``w_<option>``: the generated control of a display option or a method setting
        controls = {**self.__dict__.get("option_controls", {}), **self.__dict__.get("setting_controls", {})}
        if name.startswith("w_") and name[2:] in controls:
            return controls[name[2:]]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # ------------------------------------------------------------------ layout
    def children(self) -> list[W.Widget]:
        """The explorer's rows, top to bottom (no widget among them has a ``None`` tooltip)."""
        rows = self._rows()
        for row in rows:
            fill_tooltips(row)
        return rows

    def _rows(self) -> list[W.Widget]:
        # One row of four square panels (input, map, feature map, projection), then the class chart:
        # at 1366 px the input and the feature map are on screen together.
        # Top to bottom: what to explain (method, image, layer), how to draw it, then the line that
        # talks to the user (status, busy state, progress, errors) right above the maps, the four
        # square panels, and the class chart beside the channel grid. At 1366x768 in Lab with
        # the file browser open the status line and the maps are on the first screen
        # (tests/browser/test_e2e_layout.py).
        self.w_input_title = _caption("input")
        panels = _classed(W.HBox([
            _classed(W.VBox([self.w_input_title, self.w_input, self.w_input_note]), "sw-panel"),
            _classed(W.VBox([self.w_map_title, self.w_map, self.w_map_msg]), "sw-panel"),
            _classed(W.VBox([_caption("feature map", "(click an activation; double-click: the strongest)"), self.w_canvas]), "sw-panel"),
            _classed(W.VBox([self.w_proj_title, self.w_proj, self.w_proj_msg]), "sw-panel"),
        ]), "sw-row", "sw-panels")
        below = _classed(W.HBox([
            _classed(W.VBox([_caption("target class", "(click a bar)"), self.w_bars_fig]), "sw-chart"),
            _classed(W.VBox([_caption("every filter of the layer", "(click one to select it)"), self.w_channels]), "sw-channels"),
            _classed(W.VBox([_caption("what a unit wants", "(feature visualization)"), self.w_featviz]), "sw-featviz-box"),
        ]), "sw-row", "sw-below")
        return [
            self.w_style,
            self.w_rules,
            _classed(W.HBox([self.w_method]), "sw-toprow"),
            _classed(W.HBox([self.w_view, self.w_sample, self.w_upload, self.w_source, self.w_export]), "sw-row"),
            _classed(W.HBox([self.w_layer, self.w_all_layers, self.w_channel, self.w_strongest]), "sw-row"),
            _classed(W.HBox([*self._display_controls(slider=False), *self._display_controls(slider=True)]), "sw-row"),
            _classed(W.HBox([self.w_status, self.w_progress]), "sw-statusrow"),
            self.w_trace_box,
            panels,
            # under the maps: a method's settings come and go with the method, and must not move the map
            self.w_settings,
            self.w_compare,
            below,
            self.w_analyses,
        ]

    def _display_controls(self, slider: bool) -> list[W.ValueWidget]:
        """The display options' controls: the sliders, or the menus and checkboxes, in spec order."""
        return [c for c in self.option_controls.values() if isinstance(c, (W.FloatSlider, W.IntSlider)) == slider]

    # ------------------------------------------------------------------ updates
    def show_settings(self, method: str, view: str, settings: MethodSettings | None = None) -> None:
        """Show the settings ``method`` reads (every method's in the compare view) with ``settings``; hide the others.

        A setting read only with some value of another (LRP's γ with the γ composite) shows only then.
        """
        shown = False
        sets = settings if settings is not None else MethodSettings()
        for name, ctrl in self.setting_controls.items():
            spec = self._setting_specs[name]
            on = any(sets.reads(spec, m) for m in (spec.methods if view == "compare" else (method,)))
            ctrl.layout.display = "" if on else "none"
            shown = shown or on
        self.w_settings.layout.display = "" if shown else "none"

    def set_cam_layers(self, options: Sequence[tuple[str, str]], value: str) -> None:
        """Fill the CAM layer menu with ``(label, key)`` pairs and select ``value``."""
        ctrl = self.setting_controls["cam_layer"]
        ctrl.options = list(options) if options else [("(the engine's default)", "")]
        ctrl.value = value

    def add_css(self, rule: str) -> None:
        """Add one CSS rule to the explorer's stylesheet (a hidden HTML widget)."""
        self.w_style.value = self.w_style.value.replace("</style>", f"{rule}</style>", 1)

    def set_layers(self, options: Sequence[tuple[str, str]], value: str, noop: set[str] | frozenset[str] = frozenset()) -> None:
        """Fill the layer menu with ``(label, key)`` pairs and select ``value``.

        Keys in ``noop`` (layers that pass their input through) are listed only while "all
        layers" is ticked, or while one of them is the current layer.
        """
        self._layers, self._noop = list(options), set(noop)
        self.w_all_layers.layout.display = "" if self._noop else "none"
        self._fill_layers(value)

    def _fill_layers(self, value: str | None = None) -> None:
        value = self.w_layer.value if value is None else value
        shown = [o for o in self._layers if self.w_all_layers.value or o[1] not in self._noop or o[1] == value] or self._layers
        hidden = len(self._layers) - len(shown)
        self.w_all_layers.description = f"all layers (+{hidden})" if hidden else "all layers"
        if [k for _, k in self.w_layer.options] != [k for _, k in shown]:
            self.w_layer.options = shown  # selects the first entry: the current layer is set back below
        if value is not None and value in [k for _, k in shown]:
            self.w_layer.value = value

    def select_layer(self, key: str) -> None:
        """Show ``key`` as the menu's choice (listing it while current, if it is a hidden pass-through layer)."""
        if self.w_layer.value != key:
            self._fill_layers(key)

    def layer_keys(self) -> list[str]:
        """Every layer key the menu can offer (hidden pass-through layers included)."""
        return [k for _, k in self._layers]

    def set_method_notes(self, methods: Sequence[str], unavailable: dict[str, str | None]) -> None:
        """Method buttons: what each shows on hover, or, greyed out, why it is unavailable for this model.

        Shown before any click: a button of a method this model cannot run looks disabled (a
        click still explains why, in the map panel).
        """
        self.w_method.tooltips = [
            unavailable.get(m) or get_method(m).description for m in methods
        ]
        rules = [
            f".{self._scope} button.widget-toggle-button:nth-of-type({i + 1})"
            "{opacity:.45;text-decoration:line-through;cursor:help;background:repeating-linear-gradient("
            "135deg,#eee 0 4px,#f7f7f7 4px 8px)}"
            for i, m in enumerate(methods) if unavailable.get(m)
        ]
        self.unavailable = [m for m in methods if unavailable.get(m)]
        self.w_rules.value = f"<style>{''.join(rules)}</style>" if rules else ""

    def _on_sign(self, change: dict[str, Any]) -> None:
        """A signed map needs a diverging colormap: switch to one (and back), and say so in the menu."""
        signed = change["new"] == "signed"
        cmap = self.w_cmap.value
        if signed and cmap not in R.DIVERGING:
            self._cmap_before_signed = cmap
            self.w_cmap.value = R.DIVERGING[0]
        elif not signed and self._cmap_before_signed is not None:
            if cmap == R.DIVERGING[0]:  # still the colormap the switch chose: give the user's back
                self.w_cmap.value = self._cmap_before_signed
            self._cmap_before_signed = None
        self._cmap_note()

    def _cmap_note(self) -> None:
        # The menu's label says what a signed map is drawn with: the colormap the switch chose, or
        # (a sequential one picked while signed) the diverging one drawn instead. Option labels stay
        # the plain names (renaming options would reset the menu's selection).
        signed, cmap = self.w_sign.value == "signed", self.w_cmap.value
        if signed and cmap not in R.DIVERGING:
            text = f"colormap → {R.DIVERGING[0]}"
        elif signed and self._cmap_before_signed is not None and cmap == R.DIVERGING[0]:
            text = "colormap (signed)"
        else:
            text = "colormap"
        self.w_cmap.description = text

    def show_source(self, source: str, size: int | None = None, error: str | None = None) -> None:
        """Say next to the upload button what image is shown (name, size) or why an upload failed.

        The sample menu keeps the name of a loaded sample (and shows "(sample)" for anything else),
        so the loaded image is always named on the first screen.
        """
        self.w_source.value = source_html(source, size, error)
        # Never set the menu to another sample (that would load it): only clear it when it names
        # something else than the shown image.
        name = source[len("sample "):] if source.startswith("sample ") else ""
        if self.w_sample.value and (error or self.w_sample.value != name):
            self.w_sample.value = ""
        if error:
            return
        label = source_name(source)
        self.w_input_title.value = two_lines(
            f"<b>input</b> <span class='sw-detail'>{html.escape(label)}</span>", f"input: {label}"
        ) if source else two_lines("<b>input</b>", "input")

    def set_filters(self, count: int, value: int) -> None:
        """Let the filter slider range over ``count`` filters and show ``value``."""
        self.w_channel.max = max(0, count - 1)
        self.w_channel.value = value

    # ------------------------------------------------------------------ busy state
    def _dimmed(self) -> tuple[W.DOMWidget, ...]:
        return (self.w_map, self.w_compare, self.w_proj)

    def show_busy(self, text: str, method: str | None = None) -> None:
        """Say ``text`` in the status line and dim the panels a new view will replace.

        Called the moment a render is requested, before any computing, so a slow method
        shows that it is working instead of leaving the old view looking current. With
        ``method``, the dimmed map's title names the method being computed (not the old one).
        """
        self.busy = True
        self.w_status.value = status_html(text)
        if method is not None:
            label = method_label(method)
            self.w_map_title.value = two_lines(f"<b>{html.escape(label)}</b> <span class='sw-detail'>computing …</span>",
                                               f"computing {label} …")
        for w in self._dimmed():
            if "sw-busy" not in w._dom_classes:
                w.add_class("sw-busy")

    def show_progress(self, done: int, total: int) -> None:
        """Show the progress bar at ``done`` of ``total`` steps (e.g. methods of the compare view)."""
        self.w_progress.value = done / total if total else 1.0
        self.w_progress.description = f"{done}/{total}"
        self.w_progress.layout.display = ""

    def show_fraction(self, fraction: float, text: str) -> None:
        """Show the progress bar at ``fraction`` (0..1) with ``text`` beside it (a batched map's progress)."""
        self.w_progress.value = min(1.0, max(0.0, fraction))
        self.w_progress.description = text
        self.w_progress.layout.display = ""

    def end_busy(self) -> None:
        """Undim the panels and hide the progress bar (the status line is set by the caller)."""
        self.busy = False
        for w in self._dimmed():
            if "sw-busy" in w._dom_classes:
                w.remove_class("sw-busy")
        self.w_progress.layout.display = "none"
        self.w_progress.value = 0.0

    def show(self, result: ViewResult) -> None:
        """Put one computed view into the panels (call with the explorer's observers muted)."""
        p = result.panels
        self.w_input.value = p["input"]
        self._panel(self.w_map, self.w_map_msg, result, "map")
        self.w_input_note.value = RECEPTIVE_NOTE if result.box is not None else ""
        self.w_map_title.value = two_lines(
            f"<b>{html.escape(result.method_label)}</b> for <b>{html.escape(result.class_label)}</b>"
            f" (p={result.probability:.3f})",
            f"{result.method_label} for {result.class_label} (p={result.probability:.3f})",
        )
        if result.compare:
            self.w_compare.show_tiles(result.compare, result.base if result.base is not None else np.zeros((1, 1, 3), np.uint8))
            self.w_compare.layout.display = ""
        else:
            self.w_compare.clear()
            self.w_compare.layout.display = "none"
        with self.w_canvas.hold_sync():
            self.w_canvas.grid = list(result.grid)
            self.w_canvas.marker = list(result.position)
            self.w_canvas.png = p["feature"]
            self.w_canvas.caption = result.feature_caption
        self._panel(self.w_proj, self.w_proj_msg, result, "projection")
        self.w_proj_title.value = two_lines(*projection_title(result.projection_rule, result.projection_note, result.position))
        with self.w_bars.hold_sync():
            # Values in the names (random weights give ~1 % bars that would look empty), bars
            # scaled to the largest probability; the remainder keeps every row a full-width target.
            self.w_bars.x = [f"{name}  {prob:.1%}" for _, name, prob in result.bars]
            probs = [prob for _, _, prob in result.bars]
            top = max(probs) if probs and max(probs) > 0 else 1.0
            self._ys.max = top
            self.w_bars.y = [probs, [max(0.0, top - v) for v in probs]]
            self.w_bars.selected = [result.selected_bar]
        # As tall as its bars (at most 8): the whole chart fits beside the channel grid.
        self.w_bars_fig.layout.height = f"{30 + 20 * len(result.bars)}px"

    def show_channels(self, activations: Callable[[], Any], key: str) -> None:
        """Show every filter of the current layer in the channel grid.

        ``activations()`` gives the layer's ``(C, H, W)`` activations; it is called only for a new
        ``key`` (image version and layer), so a click or a method change costs nothing here.
        """
        self.w_channels.show(activations, key)
        self.w_channels.selected = int(self.w_channel.value)

    def _on_channel_click(self, change: dict[str, Any]) -> None:
        channel = (change["new"] or {}).get("channel")
        if isinstance(channel, int) and 0 <= channel <= self.w_channel.max:
            self.w_channel.value = channel

    @staticmethod
    def _panel(canvas: MapCanvas, msg: W.HTML, result: ViewResult, panel: str) -> None:
        # The canvas keeps its square frame without a map and shows the message itself; the line
        # below names why a map is missing altogether (a sign with nothing to show is the browser's).
        text, raw = result.messages.get(panel), result.maps.get(panel)
        canvas.show_map(raw, result.base if result.base is not None else np.zeros((1, 1, 3), np.uint8), text)
        if raw is not None:  # what is true under every sign (the browser says what one sign hides)
            text = raw.message or ("the map is all zeros; nothing to show" if raw.all_zero() else None)
        msg.value = message_html(text) if text else ""

    def show_result_status(self, result: ViewResult, device: str, note: str = "") -> str:
        """Show what ``result`` computed, on which device, in how long, with its notes; return the line."""
        snap = result.snapshot
        # No map (a method this model cannot run, or an all-zero map): say so, not "map for".
        what = "map" if "map" in result.maps else "(no map)"
        parts = [
            f"{result.method_label} {what} for '{result.class_label}', {snap.layer} filter {snap.channel}",
            device,
            f"{result.ms:.0f} ms",
        ]
        parts += [note] if note else []
        parts += [f"warning: {result.warnings[0]}"] if result.warnings else []
        parts += [result.box_note] if result.box_note else []
        text = " · ".join(parts)
        self.show_status(text)
        return text

    def show_status(self, text: str) -> None:
        """Show a one-line status and hide any error details."""
        self.w_status.value = status_html(text)
        self.w_trace.value = ""
        self.w_trace_box.layout.display = "none"

    def show_error(self, exc: BaseException) -> str:
        """Show ``exc`` as a red status line with its traceback folded below; return the line."""
        kind = "error" if isinstance(exc, SaliencyError) else f"unexpected {type(exc).__name__}"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        text = f"{kind}: {first}"
        self.w_status.value = status_html(text, error=True)
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.w_trace.value = f"<pre style='font-size:11px;white-space:pre-wrap'>{html.escape(tb)}</pre>"
        self.w_trace_box.layout.display = ""
        return text

    def close(self) -> None:
        """Close the widgets that hold front-end resources of their own."""
        for w in (self.w_canvas, self.w_map, self.w_proj, self.w_compare, self.w_bars_fig, self.w_bars, self.w_channels):
            w.close()
