"""LatestOnlyWorker on its own: storms coalesce, the last run sees the last state, errors do not stop it."""

from __future__ import annotations

import threading

import pytest

from saliency_widget.widget.scheduler import LatestOnlyWorker


class Recorder:
    """A job that snapshots a shared 'state' and can be held at a gate."""

    def __init__(self) -> None:
        self.state = 0
        self.seen: list[int] = []
        self.gate = threading.Event()
        self.started = threading.Event()

    def job(self) -> None:
        snap = self.state
        self.started.set()
        self.gate.wait(10)
        self.seen.append(snap)


def test_storm_of_50_events_costs_at_most_two_stale_views() -> None:
    rec = Recorder()
    worker = LatestOnlyWorker(rec.job)
    rec.state = 1
    worker.schedule()
    assert rec.started.wait(10)
    for i in range(2, 51):  # 49 more events while the first render is held
        rec.state = i
        worker.schedule()
    assert worker.pending
    rec.gate.set()
    assert worker.wait(10)
    stale = [s for s in rec.seen if s != 50]
    assert len(stale) <= 2
    assert rec.seen[-1] == 50
    assert rec.seen == [1, 50]  # exactly one stale view: the one already running
    worker.close()


def test_wait_times_out_while_a_job_runs() -> None:
    rec = Recorder()
    worker = LatestOnlyWorker(rec.job)
    worker.schedule()
    assert rec.started.wait(10)
    assert worker.wait(timeout=0.05) is False
    assert not worker.idle
    rec.gate.set()
    assert worker.wait(10) is True and worker.idle
    worker.close()


def test_closed_worker_ignores_requests() -> None:
    rec = Recorder()
    rec.gate.set()
    worker = LatestOnlyWorker(rec.job)
    worker.close()
    worker.schedule()
    assert worker.wait(1) and rec.seen == [] and worker.closed


def test_an_error_is_reported_and_the_worker_keeps_serving() -> None:
    errors: list[BaseException] = []
    calls: list[int] = []

    def job() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")

    worker = LatestOnlyWorker(job, on_error=errors.append)
    worker.schedule()
    assert worker.wait(10)
    worker.schedule()
    assert worker.wait(10)
    assert [str(e) for e in errors] == ["boom"] and len(calls) == 2
    assert worker.runs == 2
    worker.close()


@pytest.mark.parametrize("nested", [False, True])
def test_muted_is_thread_local_and_reentrant(nested: bool) -> None:
    worker = LatestOnlyWorker(lambda: None)
    other: list[bool] = []
    with worker.muted():
        if nested:
            with worker.muted():
                assert worker.is_muted
        assert worker.is_muted
        t = threading.Thread(target=lambda: other.append(worker.is_muted))
        t.start()
        t.join()
    assert other == [False]
    assert not worker.is_muted
