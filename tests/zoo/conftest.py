"""The zoo sweep's summary table, printed at the end of the run (``-rA`` not needed)."""

from __future__ import annotations

import os
from typing import Any

from tests.zoo.checks import ROWS, format_table


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ROWS:
        return
    table = format_table(list(ROWS.values()))
    terminalreporter.write_sep("=", f"model zoo: {len(ROWS)} families")
    terminalreporter.write_line(table)
    path = os.environ.get("SALIENCY_ZOO_TABLE")
    if path:  # benchmarks/zoo.py reads it back
        with open(path, "w", encoding="utf-8") as f:
            f.write(table + "\n")
