"""The kernel-side render log the browser tests read, and waiting for an image to change.

The notebook under test calls ``Explorer.log_events(path)``: one JSON line per render pass.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


class Events:
    """Reads the kernel-side render log (one JSON line per render pass) written by the notebook."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def all(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def wait_for(self, pred: Any, after: int, timeout: float = 60.0, what: str = "") -> dict[str, Any]:
        """Wait for a record with seq > ``after`` satisfying ``pred`` (latest such record)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hits = [r for r in self.all() if r["seq"] > after and pred(r)]
            if hits:
                return hits[-1]
            time.sleep(0.05)
        raise AssertionError(f"no kernel-side render for {what!r}; last records: {self.all()[-3:]}")

    def last_seq(self) -> int:
        recs = self.all()
        return recs[-1]["seq"] if recs else 0


def img_src(page: Any, cls: str) -> str:
    """The ``src`` of the first ``img.<cls>`` ('' if none)."""
    return str(page.evaluate(f"() => document.querySelector('img.{cls}')?.src || ''"))


def wait_src_change(page: Any, cls: str, old: str, timeout: float = 60000) -> None:
    """Wait until ``img.<cls>`` shows a loaded image other than ``old``."""
    page.wait_for_function(
        "([cls, old]) => { const i = document.querySelector('img.' + cls); return i && i.src && i.src !== old && i.complete; }",
        arg=[cls, old], timeout=timeout, polling="raf",
    )
