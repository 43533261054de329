"""Shared helpers for the browser tests: find Chromium, launch it via Playwright.

Policy: with ``CI`` set these tests must run, so a missing Chromium/Playwright fails;
locally they skip with a hint.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
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


def free_port() -> int:
    """An unused TCP port on localhost."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
