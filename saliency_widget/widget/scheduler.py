"""Latest-only background work: a burst of requests costs at most one stale job plus the final one.

Observers never compute. They call :meth:`LatestOnlyWorker.schedule`, which marks the work
dirty and wakes one background thread; the thread clears the flag and runs the job, which
reads the *latest* state itself. Requests that arrive while a job runs only set the flag
again, so 50 slider events cost at most one stale job (the one already running) plus the
final one, and the final job always sees the final state.

:meth:`LatestOnlyWorker.muted` marks updates the widget makes to its own state (derived
values, control synchronisation) so that observers can ignore them.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

__all__ = ["LatestOnlyWorker"]


class LatestOnlyWorker:
    """One daemon thread that runs ``job`` whenever it was scheduled since its last run.

    Parameters
    ----------
    job
        Called with no argument on the worker thread; it snapshots the state it needs. An
        exception escaping it is passed to ``on_error`` and the worker keeps serving.
    on_error
        Called with the exception (on the worker thread); default: ignore it.
    on_schedule
        Called in the caller's thread by every :meth:`schedule` (before the worker wakes), so
        the widget can show a busy state at once; its exceptions are passed to ``on_error``.
    name
        Thread name, for debuggers and ``threading.enumerate()``.
    """

    def __init__(
        self,
        job: Callable[[], None],
        on_error: Callable[[BaseException], None] | None = None,
        name: str = "saliency-explorer",
        on_schedule: Callable[[], None] | None = None,
    ) -> None:
        self._job = job
        self._on_error = on_error
        self._on_schedule = on_schedule
        self._name = name
        self._cond = threading.Condition()
        self._dirty = False
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._local = threading.local()
        #: Number of jobs run so far.
        self.runs = 0

    # ------------------------------------------------------------------ requests
    def schedule(self) -> None:
        """Ask for one more run; never computes in the caller. Ignored after :meth:`close`."""
        if self._closed:
            return
        if self._on_schedule is not None:
            try:
                self._on_schedule()
            except Exception as exc:  # a failed busy indicator must not lose the request
                if self._on_error is not None:
                    self._on_error(exc)
        with self._cond:
            if self._closed:
                return
            self._dirty = True
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify_all()

    @property
    def pending(self) -> bool:
        """True while a newer request waits behind the running job (long jobs may stop early)."""
        with self._cond:
            return self._dirty

    @property
    def idle(self) -> bool:
        """True when nothing is scheduled or running."""
        with self._cond:
            return not (self._dirty or self._busy)

    def wait(self, timeout: float | None = 30.0) -> bool:
        """Block until no job is pending or running.

        Parameters
        ----------
        timeout
            Seconds to wait at most; None waits for ever.

        Returns
        -------
        bool
            True if idle, False on timeout.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while (self._dirty or self._busy) and not self._closed:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self) -> None:
        """Stop the thread after the running job (if any); later requests are ignored."""
        with self._cond:
            self._closed = True
            self._dirty = False
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    # ------------------------------------------------------------------ muting
    @contextlib.contextmanager
    def muted(self) -> Iterator[None]:
        """Mark state changes made inside as the widget's own (observers check :attr:`is_muted`).

        Thread-local, so a user's change on the kernel thread is never mistaken for the
        worker's control updates, and re-entrant.
        """
        prev = getattr(self._local, "muted", False)
        self._local.muted = True
        try:
            yield
        finally:
            self._local.muted = prev

    @property
    def is_muted(self) -> bool:
        """True inside :meth:`muted` on this thread."""
        return bool(getattr(self._local, "muted", False))

    # ------------------------------------------------------------------ thread
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._dirty and not self._closed:
                    self._cond.wait()
                if self._closed:
                    self._cond.notify_all()
                    return
                self._dirty = False
                self._busy = True
            try:
                self.runs += 1
                self._job()
            except Exception as exc:  # keep serving: one failed view must not stop the widget
                if self._on_error is not None:
                    self._on_error(exc)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
