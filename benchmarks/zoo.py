"""The model-zoo sweep (tests/zoo) timed, and its table: ``python -m benchmarks.zoo``.

Runs ``pytest tests/zoo`` in a child process (the same tests CI runs), measures its wall time
and its CPU time (user + system of the child: the wall time the sweep would take alone on
the machine when the CPUs are shared), and prints the table of the swept families (layers by
layout, default Grad-CAM layer, methods available, check outcomes). ``--out DIR`` writes
``DIR/zoo-<date>.md`` with the table and the times.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.zoo", description=__doc__.split("\n\n")[0])
    p.add_argument("-k", default="", help="pytest -k expression (e.g. 'resnet or vit'); default: the whole sweep")
    p.add_argument("--out", default="", help="directory for zoo-<date>.md (default: print only)")
    args = p.parse_args(argv)
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "zoo.md"
        env = {**os.environ, "SALIENCY_ZOO_TABLE": str(table), "PYTHONPATH": str(root)}
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/zoo", *(["-k", args.k] if args.k else [])]
        t0 = time.perf_counter()
        rc = subprocess.call(cmd, cwd=root, env=env)
        wall = time.perf_counter() - t0
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        md = table.read_text() if table.exists() else "(no table: no family was built)\n"
    cpu = usage.ru_utime + usage.ru_stime
    summary = f"zoo sweep: wall {wall:.0f} s, CPU {cpu:.0f} s (user {usage.ru_utime:.0f} + system {usage.ru_stime:.0f}), pytest exit {rc}"
    print(md)
    print(summary)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"zoo-{time.strftime('%Y-%m-%d')}.md"
        path.write_text(md + "\n" + summary + "\n")
        print(f"wrote {path}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
