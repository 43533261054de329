"""Reduced soak: 150 mixed interactions on the bundled model must not leak memory.

The full run is ``python scripts/soak.py`` (2000 interactions). The bound is loose (< 25 %
RSS growth after a 40-interaction warm-up) because RSS is a coarse, noisy signal: glibc
and PyTorch's CPU allocator keep freed arenas, and the widget's bounded LRU caches (24
maps per kind) plus the 200-entry render log only fill up during the run. A real leak
(a graph, an Explainer or the PNGs of every render kept alive) grows by tens of MiB per
hundred interactions and far exceeds it. No timing is asserted.
"""

from __future__ import annotations

import importlib.util

import pytest

from tests.helpers import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "soak.py"


@pytest.fixture(scope="module")
def soak_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("soak", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_reduced_soak_memory_is_bounded(soak_module) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("saliency_widget.models")
    # Cheap methods only, to keep the reduced run short; the full script uses all of them.
    r = soak_module.soak(n=150, warmup=40, seed=0, methods=["gradient", "deconvnet", "guided_backprop", "gradcam"])
    assert r["errors"] == []
    assert set(r["counts"]) == set(soak_module.ACTIONS)  # every kind of interaction ran
    assert r["rss_start"] > 0 and r["rss_end"] > 0
    assert r["growth_pct"] < 25.0, r


def test_rss_reader_agrees_with_statm(soak_module) -> None:  # type: ignore[no-untyped-def]
    import os

    with open("/proc/self/statm") as fh:
        statm = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    assert abs(soak_module.rss_bytes() - statm) < 64 * 2**20
