"""Soak test: drive many mixed widget interactions on the bundled model and watch memory.

Usage::

    python scripts/soak.py [-n 2000] [--warmup 100] [--seed 0]

Each interaction is one of: method switch, class-bar click, layer change, filter change,
activation click, sample-image change; the widget is waited on after each (as a user who
looks at the result would). RSS is measured after the warm-up (caches, allocator pools and
lazily imported modules are filled by then) and at the end; the growth is printed with a
short table. Exit status 0 always (``--max-growth`` makes it 1 above a threshold).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import time
from collections import Counter
from typing import Any

ACTIONS = ("method", "bar", "layer", "filter", "activation", "image")


def rss_bytes() -> int:
    """Resident set size of this process (psutil if installed, else /proc/self/statm)."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def interact(w: Any, rng: random.Random, action: str) -> None:
    """Perform one scripted interaction on the explorer ``w``."""
    if action == "method":
        w.method = rng.choice([m for m in w.methods if m != w.method])
    elif action == "bar":
        w.click_bar(rng.randrange(len(w.w_bars.x) or 1))
    elif action == "layer":
        w.layer = rng.choice([k for _, k in w.w_layer.options])
    elif action == "filter":
        w.channel = rng.randint(0, w.w_channel.max)
    elif action == "activation":
        gy, gx = w.w_canvas.grid
        w.click_activation(rng.randrange(gy), rng.randrange(gx))
    elif action == "image":
        names = list(w._samples)
        w.w_sample.value = rng.choice(names)
        w.w_sample.value = ""  # so choosing the same sample again is a change
    else:  # pragma: no cover
        raise ValueError(action)


def soak(n: int = 2000, warmup: int = 100, seed: int = 0, methods: list[str] | None = None) -> dict[str, Any]:
    """Run ``warmup`` + ``n`` interactions; return RSS figures and per-action counts.

    Parameters
    ----------
    n
        Interactions measured after the warm-up.
    warmup
        Interactions before the first RSS reading.
    seed
        Seed of the interaction sequence.
    methods
        Restrict the method switches to these (default: all registered methods).
    """
    import torch

    from saliency_widget.widget import explore

    torch.manual_seed(seed)
    rng = random.Random(seed)
    w = explore()
    if methods is not None:
        w.methods = [m for m in w.methods if m in methods]
    counts: Counter[str] = Counter()
    errors: list[str] = []
    t0 = time.perf_counter()
    try:
        rss0 = 0
        samples: list[tuple[int, int]] = []
        for i in range(warmup + n):
            if i == warmup:
                gc.collect()
                rss0 = rss_bytes()
                samples.append((0, rss0))
            action = rng.choice(ACTIONS)
            interact(w, rng, action)
            if not w.wait(timeout=120):
                raise RuntimeError(f"render did not finish after interaction {i} ({action})")
            counts[action] += 1
            if w.status.startswith(("error", "unexpected")):
                errors.append(f"{i} {action}: {w.status}")
            done = i + 1 - warmup
            if done > 0 and done % max(1, n // 10) == 0:
                samples.append((done, rss_bytes()))
        gc.collect()
        rss1 = rss_bytes()
    finally:
        w.close()
    return {
        "n": n, "warmup": warmup, "rss_start": rss0, "rss_end": rss1,
        "growth_pct": 100.0 * (rss1 - rss0) / rss0, "counts": dict(counts), "errors": errors,
        "samples": samples, "renders": w.computations, "seconds": time.perf_counter() - t0,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=2000, help="interactions after warm-up (default 2000)")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-growth", type=float, default=None, help="exit 1 if RSS grows more than this %%")
    args = ap.parse_args(argv)
    r = soak(args.n, args.warmup, args.seed)
    mib = 2**20
    print(f"interactions: {r['n']} (+{r['warmup']} warm-up), renders: {r['renders']}, {r['seconds']:.0f} s")
    print(f"RSS after warm-up: {r['rss_start'] / mib:.1f} MiB, at end: {r['rss_end'] / mib:.1f} MiB, "
          f"growth: {r['growth_pct']:+.1f} %")
    print(f"{'after':>8} {'RSS MiB':>9}")
    for done, rss in r["samples"]:
        print(f"{done:>8} {rss / mib:>9.1f}")
    print(f"{'action':>12} {'count':>6}")
    for a in ACTIONS:
        print(f"{a:>12} {r['counts'].get(a, 0):>6}")
    print(f"errors shown in the status line: {len(r['errors'])}")
    for e in r["errors"][:5]:
        print("  ", e)
    if args.max_growth is not None and r["growth_pct"] > args.max_growth:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
