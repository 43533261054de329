"""The explorer's stylesheet: busy state, a layout that fits a laptop, and no layout shifts.

One ``<style>`` in a hidden HTML widget (ipywidgets has no other way to ship CSS). Layout
rules, all measured at 1366x768 and 1920x1080 by ``tests/browser/test_e2e_layout.py``:

* the method selector wraps its compact (22 px) buttons onto as many rows as the width needs
  (two at 1366 px): every method is in sight and one click away, none hidden in a sideways
  scroll;
* the control rows wrap (they never change between renders);
* the four image panels (input, map, feature map, projection) share one row, each
  :data:`PANEL_MIN` .. :data:`PANEL_MAX` px wide and square, so the images grow with the
  available width (224 px was fixed) and the input and the feature map are on screen together;
* titles and captions are one line of fixed height, cut with an ellipsis (the full text is
  the tooltip): a long class name or "(p=...)" never pushes the map down;
* a panel without an image keeps its square frame (a placeholder), so nothing collapses;
* what talks to the user sits right above the maps: the status line (busy state with the
  method's name, errors) and the progress bar share one fixed-height row, so at 1366x768 in
  Lab with the file browser open they are on the first screen; upload and sample feedback is
  the line next to the upload button;
* panel titles wrap onto two lines of fixed height (full text on hover) instead of "feature
  map (click an activat…";
* the class chart is as tall as its bars and sits beside the channel grid (a scrolling box of
  every filter's thumbnail); the upload button shows no "(0)" file count.
"""

from __future__ import annotations

__all__ = ["EXPLORER_CSS", "PANEL_MAX", "PANEL_MIN"]

PANEL_MIN = 170  # px: four panels and their gaps fit a 1366 px wide notebook
PANEL_MAX = 330  # px: at 1920 px the images grow to this

EXPLORER_CSS = (
    "<style>"
    # busy state: the panels that will change are dimmed until the new view shows
    ".sw-busy{opacity:.35;transition:opacity .08s}"
    ".sw-progress .progress-bar{transition:none}"
    # the whole explorer never wider than its output area
    ".sw-explorer{max-width:100%;box-sizing:border-box}"
    ".sw-explorer .sw-row{flex-wrap:wrap;max-width:100%}"
    # method selector: compact buttons wrapping onto a second row when narrow (never a hidden sideways scroll)
    ".sw-method,.sw-view{display:flex!important;flex-direction:row;align-items:center;min-width:0}"
    ".sw-method{flex:1 1 auto;max-width:100%;align-items:flex-start;height:auto!important}"
    ".sw-method>label,.sw-view>label{flex:0 0 auto;width:auto!important;margin-right:6px}"
    ".sw-method>label{line-height:22px!important;height:22px}"
    ".sw-method>div{display:flex;flex-wrap:wrap;row-gap:2px;flex:1 1 0;min-width:0;line-height:22px}"
    ".sw-method button.widget-toggle-button{height:22px;line-height:22px}"
    ".sw-method button.widget-toggle-button,.sw-view button.widget-toggle-button"
    "{flex:0 0 auto;padding:0 5px;margin-right:1px;font-size:12px}"
    ".sw-toprow{flex-wrap:nowrap!important;max-width:100%}"
    ".sw-view{flex:0 0 auto;margin-right:12px}"
    # image panels: square, growing with the width between the min and max
    f".sw-panel{{flex:1 1 {PANEL_MIN}px;min-width:{PANEL_MIN}px;max-width:{PANEL_MAX}px;margin-right:6px}}"
    ".sw-square{width:100%!important;height:auto!important;aspect-ratio:1/1;object-fit:contain;background:#f4f4f4}"
    ".sw-scale{width:100%!important;height:26px!important;object-fit:contain;object-position:left}"
    ".sw-line{height:22px!important;line-height:22px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;width:100%!important}"
    ".sw-line .widget-html-content,.sw-line>div{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;line-height:22px}"
    # map panels (js/map_view.js): a square canvas, its message on a grey placeholder, the colour scale below
    ".sw-mapcanvas{width:100%}"
    ".sw-mv-stack{position:relative;width:100%;aspect-ratio:1/1;background:#f4f4f4}"
    ".sw-mv-canvas{position:absolute;inset:0;width:100%;height:100%;object-fit:contain}"
    ".sw-mv-msg{position:absolute;inset:0;display:flex;align-items:center;justify-content:center;padding:8px;"
    "box-sizing:border-box;background:#ebebeb;color:#822;font-size:12px;text-align:center}"
    ".sw-mv-canvas[hidden],.sw-mv-msg[hidden]{display:none}"
    ".sw-mv-scale{display:block;width:100%;height:10px;margin-top:2px}"
    ".sw-mv-labels{display:flex;justify-content:space-between;height:14px;line-height:14px;font:10px monospace}"
    # compare view (js/compare_view.js): a grid of map panels, each with its title and own colour scale
    ".sw-cv-root{display:grid;grid-template-columns:repeat(var(--sw-cv-columns,5),var(--sw-mv-size,160px));gap:6px}"
    ".sw-cv-root[hidden]{display:none}"
    ".sw-cv-tile{cursor:pointer}"
    ".sw-cv-title{height:18px;line-height:18px;font-size:12px;font-weight:bold;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}"
    ".sw-feature-map{width:100%}"
    ".sw-feature-map .sw-fm-root{width:100%}"
    ".sw-feature-map .sw-fm-canvas{width:100%;height:auto}"
    ".sw-bars{flex:0 0 auto}"
    # two-line titles of fixed height: wrap, then an ellipsis; the full text is the tooltip
    ".sw-title2{height:34px!important;width:100%!important;overflow:hidden}"
    ".sw-title2 .sw-two{font-size:12px;line-height:17px;white-space:normal;overflow:hidden;display:-webkit-box;"
    "-webkit-line-clamp:2;-webkit-box-orient:vertical;overflow-wrap:anywhere}"
    ".sw-detail{color:#555}"
    # the status row: status (busy, errors) and the progress bar, right above the maps
    ".sw-statusrow{flex-wrap:nowrap!important;align-items:center;min-height:26px;max-width:100%;"
    "background:#f6f8fa;border-left:3px solid #4c78a8;padding-left:4px;box-sizing:border-box}"
    ".sw-statusrow .sw-status{min-width:0;overflow:hidden}"
    ".sw-statusrow .sw-status .widget-html-content{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;line-height:24px}"
    ".sw-statusrow .sw-progress{flex:0 0 auto}"
    ".sw-source{font-size:12px;color:#333;margin-left:4px;min-width:0;overflow:hidden}"
    ".sw-source .widget-html-content{line-height:28px}"
    # labels as wide as their text, so each control row fits 934 px (1366 with the file browser open)
    ".sw-explorer .sw-row .widget-label{width:auto!important;min-width:0;margin-right:6px;padding-left:4px}"
    ".sw-explorer .sw-row .widget-readout{min-width:36px}"
    # the upload button without ipywidgets' "(0)" count: the label is drawn by the stylesheet
    ".sw-upload{font-size:0!important}"
    ".sw-upload i{font-size:var(--jp-widgets-font-size,13px);margin-right:4px}"
    ".sw-upload::after{content:'upload image';font-size:var(--jp-widgets-font-size,13px)}"
    # the class chart beside the channel grid
    ".sw-below{align-items:flex-start}"
    ".sw-below .sw-title2{height:20px!important}"
    ".sw-chart{flex:0 0 auto;margin-right:12px}"
    ".sw-channels{flex:1 1 300px;min-width:240px;max-width:560px}"
    ".sw-cg-root{max-height:230px;overflow:auto;border:1px solid #e0e0e0;padding:4px}"
    ".sw-cg-inner{position:relative;display:inline-block}"
    ".sw-cg-atlas{display:block;image-rendering:pixelated;cursor:pointer;max-width:none}"
    ".sw-cg-mark{position:absolute;border:2px solid #f58518;pointer-events:none}"
    ".sw-cg-info{font:11px monospace;color:#555;margin-top:2px}"
    "</style>"
)
