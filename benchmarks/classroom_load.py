"""A class on one machine (issue 32): N simulated students against ``saliency-widget classroom``.

Three measurements, each with its baseline in the same run:

* **kernel memory**: each classroom notebook executed in a fresh kernel (as a dashboard runs
  it), RSS / PSS / USS of the kernel process: the classroom kernel (lazy torchvision,
  :data:`~saliency_widget.classroom.serve.KERNEL_ENV`) against the baseline (torchvision
  imported as ``saliency_widget.models`` did before, default threads);
* **kernels left behind**: ``--visits`` dashboard visits in one tab, then the tab leaves;
  kernels still running 5 s later, for plain ``voila`` (baseline: the page's shutdown request
  is refused, ``_xsrf`` missing) and for the classroom server;
* **load**: ``--students`` browser contexts (headless Chromium, localhost only) arriving
  evenly over ``--arrival`` seconds. Each opens the transposed-convolution dashboard, hovers an
  output element and changes the padding (a round trip to its kernel), opens the ReLU-rules
  dashboard, edits a matrix (another round trip), reloads it once and leaves. Reported: time
  to an interactive dashboard (navigation start to kernel-computed widget content; median,
  p95), round-trip times, peak and final kernel count and memory, and every error.

Bounded: at most ``--max-seconds`` in all (students still running then are cancelled and
counted as errors), each wait at most ``--timeout`` seconds, and arrivals stop (errors
recorded) when the machine's available memory falls below ``--min-free-gb``. Run from the
repository root::

    python -m benchmarks.classroom_load                       # 10 students over 60 s
    python -m benchmarks.classroom_load --students 30 --arrival 60
    python -m benchmarks.classroom_load --skip-memory --skip-leak --students 3 --arrival 5

It prints a markdown report and writes ``benchmarks/results/classroom-<date>-n<N>.{json,md}``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from saliency_widget.classroom.notebooks import CLASSROOM_NOTEBOOKS, notebook_json, write_classroom_notebooks
from saliency_widget.classroom.serve import KERNEL_ENV

RESULTS = Path(__file__).resolve().parent / "results"
HOST = "127.0.0.1"  # every request of this benchmark goes to this machine only
MiB = 2**20
RELU, TRANSPOSED = "02_relu_rules.ipynb", "03_transposed_convolution.ipynb"
# Text the dashboards show once their kernel has computed the explorer (not just the page shell).
READY = {RELU: "deconvnet: relu(R)", TRANSPOSED: "equals the input-gradient of conv2d(x, w)"}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"]


# --------------------------------------------------------------------------- kernels and memory


def kernel_processes(root_pid: int) -> list[psutil.Process]:
    """The Jupyter kernel processes below ``root_pid`` (the classroom command or Voilà)."""
    try:
        children = psutil.Process(root_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    out = []
    for c in children:
        try:
            if "ipykernel" in " ".join(c.cmdline()):
                out.append(c)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return out


def memory_of(procs: list[psutil.Process], full: bool = False) -> dict[str, float]:
    """Summed ``rss`` (and ``pss``/``uss`` when ``full``) in MiB of ``procs``; vanished ones count 0."""
    tot = {"rss": 0.0, "pss": 0.0, "uss": 0.0}
    for p in procs:
        try:
            if full:
                info = p.memory_full_info()
                tot["pss"] += info.pss / MiB
                tot["uss"] += info.uss / MiB
                tot["rss"] += info.rss / MiB
            else:
                tot["rss"] += p.memory_info().rss / MiB
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return tot if full else {"rss": tot["rss"]}


def chromium_path() -> str:
    """The system Chromium (``SALIENCY_CHROMIUM`` overrides)."""
    for cand in (os.environ.get("SALIENCY_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if cand and os.access(cand, os.X_OK):
            return cand
    raise SystemExit("Chromium not found; set SALIENCY_CHROMIUM")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def kernel_memory() -> list[dict[str, Any]]:
    """Each classroom notebook run in a fresh kernel: baseline vs classroom RSS/PSS/USS (MiB)."""
    import nbformat
    from nbclient import NotebookClient

    rows = []
    for name, cells in CLASSROOM_NOTEBOOKS.items():
        row: dict[str, Any] = {"notebook": name}
        for variant in ("baseline", "classroom"):
            nb = nbformat.reads(notebook_json(cells), as_version=4)
            if variant == "baseline" and name == RELU:
                # before issue 32 `saliency_widget.models` imported torchvision eagerly
                nb.cells.insert(0, nbformat.v4.new_code_cell("import torchvision"))
            env = {k: v for k, v in os.environ.items() if k not in KERNEL_ENV}
            if variant == "classroom":
                env.update(KERNEL_ENV)
            client = NotebookClient(nb, timeout=600, kernel_name="python3")
            saved = dict(os.environ)
            os.environ.clear()
            os.environ.update(env)  # the kernel inherits this process's environment
            try:
                with client.setup_kernel():
                    t0 = time.perf_counter()
                    for i, cell in enumerate(nb.cells):
                        client.execute_cell(cell, i)
                    seconds = time.perf_counter() - t0
                    pid = client.km.provisioner.process.pid  # type: ignore[union-attr]
                    mem = memory_of([psutil.Process(pid)], full=True)
            finally:
                os.environ.clear()
                os.environ.update(saved)
            row[variant] = {**{k: round(v, 1) for k, v in mem.items()}, "execute_s": round(seconds, 2)}
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- servers


class ClassroomServer:
    """``saliency-widget classroom`` (or plain ``voila`` as the baseline) on a free localhost port."""

    def __init__(self, tmp: Path, *, plain_voila: bool = False, pool: int = 1, cull_idle: int = 60) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        folder = tmp / ("voila" if plain_voila else "classroom")
        write_classroom_notebooks(folder)
        if plain_voila:
            cmd = [sys.executable, "-m", "voila", str(folder), f"--port={self.port}", "--Voila.ip=localhost", "--no-browser"]
        else:
            cmd = [sys.executable, "-m", "saliency_widget.cli", "classroom", "--no-browser", f"--port={self.port}",
                   f"--dir={folder}", f"--pool={pool}", f"--cull-idle={cull_idle}"]
        env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp / "config"), "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
               "JUPYTER_PLATFORM_DIRS": "1"}
        self.log_path = tmp / ("voila.log" if plain_voila else "classroom.log")
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=tmp)
        self.pool = 0 if plain_voila else pool

    def wait_ready(self, timeout: float = 180.0) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(self.url + "/", timeout=2).close()
                break
            except OSError:
                time.sleep(0.3)
        else:
            raise TimeoutError(f"server did not answer in {timeout} s")
        # with a pool, wait until it is filled: the run starts from the teacher's steady state
        while self.pool and len(kernel_processes(self.proc.pid)) < 2 * self.pool and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(3 if self.pool else 0)

    def kernels(self) -> list[psutil.Process]:
        return kernel_processes(self.proc.pid)

    def server_processes(self) -> list[psutil.Process]:
        """The command and Voilà, without the kernels."""
        try:
            root = psutil.Process(self.proc.pid)
            kids = root.children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        kernels = {k.pid for k in kernel_processes(self.proc.pid)}
        return [root] + [c for c in kids if c.pid not in kernels]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class Sampler(threading.Thread):
    """Samples kernel count, kernel RSS (every ``period`` s) and PSS (every 5th sample) until stopped."""

    def __init__(self, server: ClassroomServer, period: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.server, self.period = server, period
        self.samples: list[dict[str, float]] = []
        self.stop_event = threading.Event()
        self.t0 = time.monotonic()

    def run(self) -> None:
        n = 0
        while not self.stop_event.is_set():
            ks = self.server.kernels()
            full = n % 5 == 0
            mem = memory_of(ks, full=full)
            server_rss = memory_of(self.server.server_processes())["rss"]
            self.samples.append({"t": round(time.monotonic() - self.t0, 1), "kernels": len(ks), "kernel_rss_mib": round(mem["rss"]),
                                 **({"kernel_pss_mib": round(mem["pss"])} if full else {}), "server_rss_mib": round(server_rss),
                                 "available_mib": round(psutil.virtual_memory().available / MiB)})
            n += 1
            self.stop_event.wait(self.period)


# --------------------------------------------------------------------------- students


@dataclass
class Student:
    """What one simulated student saw."""

    index: int
    tti_s: dict[str, float] = field(default_factory=dict)  # "03", "02", "02 reload" -> seconds
    round_trip_s: dict[str, float] = field(default_factory=dict)  # "03 padding", "02 matrix" -> seconds
    errors: list[str] = field(default_factory=list)
    done: bool = False


async def _open(page: Any, url: str, ready: str, timeout_ms: float) -> float:
    t0 = time.perf_counter()
    await page.goto(url, wait_until="commit", timeout=timeout_ms)
    await page.get_by_text(ready).first.wait_for(timeout=timeout_ms)
    return time.perf_counter() - t0


async def student(browser: Any, base: str, s: Student, timeout_s: float) -> None:
    """Open 03 (hover, change padding), open 02 (edit a matrix), reload 02, leave."""
    ms = timeout_s * 1000
    step = "new context"
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = await ctx.new_page()
        page.on("pageerror", lambda e: s.errors.append(f"page error: {e}"))
        step = "open 03"
        s.tti_s["03"] = await _open(page, f"{base}/voila/render/{TRANSPOSED}", READY[TRANSPOSED], ms)
        step = "hover 03"
        cell = page.locator("td.swc-cell").nth(2 * 4 + 2)
        await cell.hover()
        await cell.locator(".swc-pop").wait_for(state="visible", timeout=ms)
        await page.mouse.move(0, 0)
        step = "03 padding round trip"
        t0 = time.perf_counter()
        await page.locator(".widget-dropdown select").first.select_option(label="TF valid")
        await page.get_by_text("5×5", exact=True).first.wait_for(timeout=ms)
        s.round_trip_s["03 padding"] = time.perf_counter() - t0

        step = "open 02"
        s.tti_s["02"] = await _open(page, f"{base}/voila/render/{RELU}", READY[RELU], ms)
        step = "02 matrix round trip"
        box = page.locator("textarea").first
        t0 = time.perf_counter()
        await box.fill("3 -1 0")
        await box.press("Tab")
        await page.get_by_text("they must have the same shape").first.wait_for(timeout=ms)
        s.round_trip_s["02 matrix"] = time.perf_counter() - t0

        step = "reload 02"
        t0 = time.perf_counter()
        await page.reload(wait_until="commit", timeout=ms)
        await page.get_by_text(READY[RELU]).first.wait_for(timeout=ms)
        s.tti_s["02 reload"] = time.perf_counter() - t0
        await page.goto("about:blank")  # leaving: the page's unload handler asks for its kernel's shutdown
        s.done = True
    except Exception as err:  # a failed student is a result, not a crash of the benchmark
        s.errors.append(f"{step}: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
    finally:
        await ctx.close()


async def run_class(server: ClassroomServer, n: int, arrival: float, timeout_s: float, max_seconds: float, min_free_gb: float) -> list[Student]:
    """``n`` students arriving evenly over ``arrival`` seconds; everything cancelled after ``max_seconds``."""
    from playwright.async_api import async_playwright

    students = [Student(i) for i in range(n)]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            async def arrive(s: Student) -> None:
                await asyncio.sleep(arrival * s.index / max(n - 1, 1) if n > 1 else 0)
                if psutil.virtual_memory().available < min_free_gb * 2**30:
                    s.errors.append(f"not started: less than {min_free_gb} GB of memory available")
                    return
                await student(browser, server.url, s, timeout_s)

            tasks = [asyncio.create_task(arrive(s)) for s in students]
            done, pending = await asyncio.wait(tasks, timeout=max_seconds)
            for t in pending:
                t.cancel()
            for s in students:
                if not s.done and not s.errors:
                    s.errors.append(f"cancelled after --max-seconds {max_seconds:.0f}")
        finally:
            await browser.close()
    return students


def leak_check(tmp: Path, plain_voila: bool, visits: int, timeout_s: float) -> dict[str, Any]:
    """``visits`` visits of the transposed-convolution dashboard in one tab, then leave: kernels left 5 s later."""
    server = ClassroomServer(tmp, plain_voila=plain_voila, pool=0)
    try:
        server.wait_ready()

        async def go() -> None:
            from playwright.async_api import async_playwright

            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
                ctx = await browser.new_context()
                page = await ctx.new_page()
                for _ in range(visits):
                    await _open(page, f"{server.url}/voila/render/{TRANSPOSED}", READY[TRANSPOSED], timeout_s * 1000)
                await page.goto("about:blank")
                await browser.close()

        asyncio.run(go())
        time.sleep(5)
        ks = server.kernels()
        refused = server.log_path.read_text(errors="replace").count("'_xsrf' argument missing from POST")
        return {"server": "voila (baseline)" if plain_voila else "saliency-widget classroom", "visits": visits,
                "kernels_left": len(ks), "kernel_rss_mib_left": round(memory_of(ks)["rss"]), "shutdowns_refused_403": refused}
    finally:
        server.stop()


# --------------------------------------------------------------------------- report


def pct(values: list[float], q: float) -> float:
    """The ``q``-quantile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(q * len(v) + 0.5) - 1))]


def load_test(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    server = ClassroomServer(tmp, pool=args.pool, cull_idle=args.cull_idle)
    try:
        server.wait_ready()
        sampler = Sampler(server)
        sampler.start()
        t0 = time.monotonic()
        students = asyncio.run(run_class(server, args.students, args.arrival, args.timeout, args.max_seconds, args.min_free_gb))
        class_s = time.monotonic() - t0
        # after everyone left: how long until only the pool is left (bounded by the cull timeout + a margin)
        target = 2 * args.pool
        t_left = time.monotonic()
        settle_limit = args.cull_idle + 60 + 30
        while len(server.kernels()) > target and time.monotonic() - t_left < settle_limit:
            time.sleep(1)
        settle_s = time.monotonic() - t_left
        time.sleep(2)
        sampler.stop_event.set()
        sampler.join()
        final = server.kernels()
        final_mem = memory_of(final, full=True)
        log = server.log_path.read_text(errors="replace")
    finally:
        server.stop()
    samples = sampler.samples
    tti = {k: [s.tti_s[k] for s in students if k in s.tti_s] for k in ("03", "02", "02 reload")}
    all_tti = [v for vs in tti.values() for v in vs]
    rt = {k: [s.round_trip_s[k] for s in students if k in s.round_trip_s] for k in ("03 padding", "02 matrix")}
    peak = max(samples, key=lambda r: r["kernel_rss_mib"]) if samples else {}
    return {
        "students": args.students, "arrival_s": args.arrival, "pool_per_notebook": args.pool, "cull_idle_s": args.cull_idle,
        "class_duration_s": round(class_s, 1),
        "students_completed": sum(s.done for s in students),
        "failed_students": sum(bool(s.errors) for s in students),
        "errors": [f"student {s.index}: {e}" for s in students for e in s.errors],
        "tti_s": {k: {"n": len(v), "median": round(statistics.median(v), 2) if v else None, "p95": round(pct(v, 0.95), 2) if v else None, "max": round(max(v), 2) if v else None} for k, v in tti.items()},
        "tti_all_s": {"n": len(all_tti), "median": round(statistics.median(all_tti), 2) if all_tti else None, "p95": round(pct(all_tti, 0.95), 2) if all_tti else None},
        "round_trip_s": {k: {"n": len(v), "median": round(statistics.median(v), 2) if v else None, "p95": round(pct(v, 0.95), 2) if v else None} for k, v in rt.items()},
        "peak_kernels": max((r["kernels"] for r in samples), default=0),
        "peak_kernel_rss_mib": peak.get("kernel_rss_mib", 0),
        "peak_kernel_pss_mib": max((r.get("kernel_pss_mib", 0) for r in samples), default=0),
        "min_available_mib": min((r["available_mib"] for r in samples), default=0),
        "final_kernels": len(final), "final_kernel_rss_mib": round(final_mem["rss"]), "final_kernel_pss_mib": round(final_mem["pss"]),
        "seconds_to_pool_after_last_left": round(settle_s, 1),
        "server_log_refused_shutdowns": log.count("'_xsrf' argument missing from POST"),
        "server_log_culled": log.count("Culling '"),
        "samples": samples,
    }


def markdown(res: dict[str, Any]) -> str:
    lines = [f"# Classroom load, {res['date']} ({res['machine']})", ""]
    if res.get("kernel_memory"):
        lines += ["## Memory of one dashboard kernel (MiB)", "", "| notebook | baseline RSS | baseline PSS | baseline USS | classroom RSS | classroom PSS | classroom USS |", "|---|---|---|---|---|---|---|"]
        for r in res["kernel_memory"]:
            b, c = r["baseline"], r["classroom"]
            lines.append(f"| {r['notebook']} | {b['rss']:.0f} | {b['pss']:.0f} | {b['uss']:.0f} | {c['rss']:.0f} | {c['pss']:.0f} | {c['uss']:.0f} |")
        lines.append("")
    if res.get("leak"):
        lines += ["## Kernels left after the visits ended", "", "| server | visits | kernels left | their RSS (MiB) | shutdowns refused (403) |", "|---|---|---|---|---|"]
        for r in res["leak"]:
            lines.append(f"| {r['server']} | {r['visits']} | {r['kernels_left']} | {r['kernel_rss_mib_left']} | {r['shutdowns_refused_403']} |")
        lines.append("")
    if res.get("load"):
        L = res["load"]
        lines += [f"## {L['students']} students arriving over {L['arrival_s']:.0f} s (pool {L['pool_per_notebook']} per notebook, cull after {L['cull_idle_s']} s idle)", ""]
        lines += [f"- completed: {L['students_completed']}/{L['students']}, failed: {L['failed_students']}, class took {L['class_duration_s']} s"]
        for k, v in L["tti_s"].items():
            lines.append(f"- time to interactive, {k}: median {v['median']} s, p95 {v['p95']} s, max {v['max']} s (n={v['n']})")
        lines.append(f"- time to interactive, all dashboards: median {L['tti_all_s']['median']} s, p95 {L['tti_all_s']['p95']} s (n={L['tti_all_s']['n']})")
        for k, v in L["round_trip_s"].items():
            lines.append(f"- round trip, {k}: median {v['median']} s, p95 {v['p95']} s")
        lines += [
            f"- peak: {L['peak_kernels']} kernels, {L['peak_kernel_rss_mib']} MiB RSS / {L['peak_kernel_pss_mib']} MiB PSS in kernels; lowest available memory {L['min_available_mib']} MiB",
            f"- after the last student left: {L['final_kernels']} kernels ({L['final_kernel_pss_mib']} MiB PSS) after {L['seconds_to_pool_after_last_left']} s; "
            f"refused shutdowns in the log: {L['server_log_refused_shutdowns']}, culled kernels: {L['server_log_culled']}",
            f"- errors: {L['errors'] or 'none'}",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--students", type=int, default=10, help="simulated students (default: %(default)s; 1 to 60)")
    p.add_argument("--arrival", type=float, default=60.0, help="seconds over which they arrive (default: %(default)s)")
    p.add_argument("--pool", type=int, default=1, help="pre-started kernels per notebook (default: %(default)s)")
    p.add_argument("--cull-idle", type=int, default=60, help="server's idle-kernel timeout in seconds (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=240.0, help="longest wait for one step, seconds (default: %(default)s)")
    p.add_argument("--max-seconds", type=float, default=900.0, help="the class is cancelled after this (default: %(default)s)")
    p.add_argument("--min-free-gb", type=float, default=2.0, help="no new student below this much available memory (default: %(default)s)")
    p.add_argument("--visits", type=int, default=4, help="visits in the kernels-left check (default: %(default)s)")
    p.add_argument("--skip-memory", action="store_true", help="skip the per-kernel memory measurement")
    p.add_argument("--skip-leak", action="store_true", help="skip the kernels-left check")
    p.add_argument("--skip-load", action="store_true", help="skip the load test")
    p.add_argument("--tag", default="", help="suffix of the results file name")
    args = p.parse_args(argv)
    if not 1 <= args.students <= 60:
        p.error(f"--students must be 1 to 60, got {args.students}")
    res: dict[str, Any] = {"date": _dt.datetime.now().isoformat(timespec="seconds"),
                           "machine": f"{platform.node()}, {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GB, load {os.getloadavg()[0]:.1f}"}
    with tempfile.TemporaryDirectory(prefix="classroom-load-") as tmp:
        if not args.skip_memory:
            res["kernel_memory"] = kernel_memory()
            print(markdown({**res, "leak": None, "load": None}), flush=True)
        if not args.skip_leak:
            res["leak"] = [leak_check(Path(tmp) / name, plain, args.visits, args.timeout) for name, plain in (("base", True), ("fixed", False))]
            print(markdown({**res, "kernel_memory": None, "load": None}), flush=True)
        if not args.skip_load:
            (Path(tmp) / "load").mkdir()
            res["load"] = load_test(Path(tmp) / "load", args)
    md = markdown(res)
    print(md)
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"classroom-{_dt.date.today().isoformat()}-n{args.students}{'-' + args.tag if args.tag else ''}"
    n = 2
    while stem.with_suffix(".json").exists():  # never overwrite an earlier run's results
        stem = stem.with_name(f"{stem.name.rsplit('-run', 1)[0]}-run{n}")
        n += 1
    stem.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    stem.with_suffix(".md").write_text(md)
    print(f"wrote {stem}.json and .md")
    load = res.get("load")
    return 1 if load and load["failed_students"] else 0


if __name__ == "__main__":
    sys.exit(main())
