"""Shared helpers for the browser tests: find Chromium, launch it via Playwright.

Policy: with ``CI`` set these tests must run, so a missing Chromium/Playwright fails;
locally they skip with a hint.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def in_ci() -> bool:
    """True when the ``CI`` environment variable is set to a truthy value."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(reason: str) -> None:
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so browser tests must run)")
    pytest.skip(f"{reason}; install with `apt-get install -y chromium` and `pip install playwright`")


def chromium_path() -> str:
    """Path of the system Chromium, or skip/fail per the CI policy."""
    for cand in (os.environ.get("SALIENCY_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    missing("Chromium not found")
    raise AssertionError("unreachable")


@contextmanager
def browser_page(**context_kwargs: Any) -> Iterator[Any]:
    """Launch headless Chromium through Playwright and yield a fresh page."""
    exe = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Python package playwright is not installed")
        raise
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        try:
            ctx = browser.new_context(**context_kwargs)
            page = ctx.new_page()
            yield page
        finally:
            browser.close()


@contextmanager
def js_modules_page(page_html: str, files: Sequence[str], modules: Mapping[str, str]) -> Iterator[Any]:
    """A page at ``http://sw.test/index.html`` that has imported the repository's ``js/`` modules.

    Parameters
    ----------
    page_html
        The page's HTML.
    files
        Files of ``js/`` served next to it (a module's own imports included).
    modules
        ``window`` name -> file: each file is imported as that global (``{"V": "viewer.js"}``).
    """
    from tests.helpers import REPO_ROOT

    def serve(body: str, content_type: str) -> Any:
        return lambda route: route.fulfill(status=200, content_type=content_type, body=body)

    with browser_page() as pg:
        pg.route("http://sw.test/index.html", serve(page_html, "text/html"))
        for name in files:
            pg.route(f"http://sw.test/{name}", serve((REPO_ROOT / "js" / name).read_text(encoding="utf-8"), "text/javascript"))
        pg.goto("http://sw.test/index.html")
        pg.evaluate("async () => { " + " ".join(f"window.{g} = await import('/{f}');" for g, f in modules.items()) + " }")
        yield pg


def free_port() -> int:
    """An unused TCP port on localhost."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
