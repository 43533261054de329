"""The three interactions every front end must carry to the kernel and back: toggle a method,
click a class bar, click an activation. Shared by the Notebook 7 and Voilà tests.

Each step waits for a kernel-side render record (``Explorer.log_events``) that reflects the
action and for the browser's image to change, and returns that record.
"""

from __future__ import annotations

from typing import Any

from saliency_widget.engine import available_methods, get_method

from .renderlog import Events, img_src, second_brightest_cell, wait_src_change

# The bundled model and sample (the explorer's defaults), with the render log the steps read.
SETUP = """\
from saliency_widget.widget import explore
w = explore()
w.log_events("events.jsonl")
w
"""




def first_render(page: Any, events: Events) -> dict[str, Any]:
    """Wait for the explorer to show and its first error-free, non-blank render."""
    page.wait_for_selector(".sw-map-image", state="visible", timeout=120000)
    page.wait_for_selector("canvas.sw-fm-canvas", timeout=60000)
    first = events.wait_for(lambda r: r["error"] is None, after=0, timeout=90, what="initial render")
    assert all(first["nonblank"].values()), first
    return first


def toggle_method(page: Any, events: Events, prev: dict[str, Any]) -> dict[str, Any]:
    """Click the second method button; the map must change to that method's."""
    labels = page.eval_on_selector_all(".sw-method button", "bs => bs.map(b => b.textContent.trim())")
    names = {get_method(n).label: n for n in available_methods()}
    assert len(labels) >= 3 and set(labels) <= set(names), labels
    label = labels[1]
    old, seq = img_src(page, "sw-map-image"), events.last_seq()
    page.click(f".sw-method button:text-is('{label}')")
    wait_src_change(page, "sw-map-image", old)
    rec = events.wait_for(lambda r: r["state"]["method"] == names[label] and "map" in r["images"], after=seq, what=f"method {label}")
    assert rec["nonblank"]["map"] and rec["images"]["map"] != prev["images"]["map"]
    return rec


def click_bar(page: Any, events: Events, prev: dict[str, Any]) -> dict[str, Any]:
    """Click the third class bar; the map must explain that class."""
    bars = page.locator(".sw-bars .bargroup")
    assert bars.count() >= 3
    old, seq = img_src(page, "sw-map-image"), events.last_seq()
    bars.nth(2).click()
    wait_src_change(page, "sw-map-image", old)
    rec = events.wait_for(lambda r: r["state"]["target"] is not None, after=seq, what="bar click")
    assert rec["nonblank"]["map"] and rec["images"]["map"] != prev["images"]["map"]
    return rec


def click_activation(page: Any, events: Events, prev: dict[str, Any]) -> dict[str, Any]:
    """Click the second-brightest cell of the feature map; its projection must show."""
    canvas = page.locator("canvas.sw-fm-canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    gh, gw, cy, cx = second_brightest_cell(page)
    old, seq = img_src(page, "sw-projection-image"), events.last_seq()
    page.mouse.click(box["x"] + box["width"] * (cx + 0.5) / gw, box["y"] + box["height"] * (cy + 0.5) / gh)
    rec = events.wait_for(lambda r: r["state"]["position"] == [cy, cx], after=seq, what="activation click")
    wait_src_change(page, "sw-projection-image", old)
    assert rec["error"] is None and rec["nonblank"]["projection"]
    assert rec["images"]["projection"] != prev["images"]["projection"]
    return rec


def all_three(page: Any, events: Events) -> None:
    """First render, then method toggle, bar click and activation click, each changing an image."""
    prev = first_render(page, events)
    prev = toggle_method(page, events, prev)
    prev = click_bar(page, events, prev)
    click_activation(page, events, prev)
