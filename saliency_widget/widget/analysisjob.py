"""The analyses panel's running job: one worker thread, its progress bar and text, and its cancel button.

Top-9, the pointing game and the sanity check take seconds to minutes. Their buttons start
them here, on a worker thread, so the kernel stays free for the cancel button (and the
explorer); the work stops before its next batch through the one protocol of
:mod:`saliency_widget.engine.progress` (the progress callback returns False once cancelled),
as faithfulness and the slow maps do. One job at a time: a second start says so.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as W

from ..engine.progress import Progress
from ..viz.report import message_html

__all__ = ["AnalysisJob"]


class AnalysisJob:
    """A worker thread for one analysis at a time, with a progress bar, a progress text and a cancel button.

    Parameters
    ----------
    run
        ``run(which)``: computes and shows analysis ``which``, calling :meth:`begin` first and
        :meth:`end` last; :meth:`start` calls it on the worker thread.
    """

    def __init__(self, run: Callable[[str], Any]) -> None:
        self._run = run
        self._busy = threading.Lock()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        #: Progress updates shown by the current (or last) job.
        self.updates = 0
        self.w_progress = W.FloatProgress(0.0, min=0.0, max=1.0, description="idle")
        self.w_text = W.HTML()
        self.w_stop = W.Button(description="cancel", icon="stop", disabled=True, tooltip="stop the running analysis before its next batch")
        self.w_stop.on_click(lambda _b: self.cancel())

    # ------------------------------------------------------------------ control
    def start(self, which: str) -> None:
        """Run ``which`` on a worker thread (what the buttons do); a note when a job already runs."""
        if self._busy.locked() or (self._thread is not None and self._thread.is_alive()):
            self.note_running()
            return
        self._thread = threading.Thread(target=self._run, args=(which,), name=f"saliency-{which}", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """Stop the running job before its next batch (its caller keeps the last result shown)."""
        self._cancel.set()

    def wait(self, timeout: float | None = 60.0) -> bool:
        """Block until the job :meth:`start` began has ended; True if none runs."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()

    def begin(self) -> bool:
        """Claim the panel for one job (False: another runs); arms the cancel button."""
        if not self._busy.acquire(blocking=False):
            return False
        self.updates = 0
        self._cancel.clear()
        self.w_stop.disabled = False
        return True

    def end(self) -> None:
        """Release the claim of :meth:`begin`."""
        self.w_stop.disabled = True
        self._busy.release()

    def note_running(self) -> None:
        """Say that an analysis is already running."""
        self.w_text.value = message_html("an analysis is already running", "note")

    # ------------------------------------------------------------------ progress
    def show(self, done: float, label: str, text: str = "") -> None:
        """Fill the bar to ``done`` (0..1) under ``label``, with ``text`` beside it."""
        self.w_progress.value = max(0.0, min(1.0, done))
        self.w_progress.description = label
        self.w_text.value = f"<small>{html.escape(text)}</small>" if text else ""

    def watch(self, label: str, lo: float, hi: float, say: Callable[[int, int], str]) -> Progress:
        """A progress callback (engine.progress) filling the bar from ``lo`` to ``hi`` and saying ``say(done, total)``.

        It returns False once :meth:`cancel` was called, which stops the work before its next batch.
        """

        def show(done: int, total: int) -> bool | None:
            if self._cancel.is_set():
                return False
            self.updates += 1
            self.show(lo + (hi - lo) * (done / total if total else 0.5), label, say(done, total))
            return None

        return show
