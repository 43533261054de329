"""The explorer's view as files and notebook outputs: PNG, HTML, mime bundles and the saved view.

:class:`ExportMixin` is mixed into :class:`~.explorer.Explorer`; it reads the explorer's last
:class:`~saliency_widget.views.pipeline.ViewResult` and state and never computes a map itself.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..views.pipeline import ViewResult, view_png
from ..viz.report import write_output
from .saved import SavedView
from .view import map_title

if TYPE_CHECKING:  # pragma: no cover
    from ..views.options import DisplayOptions
    from ..viz.modelio import ModelIO
    from .featpanel import FeaturePanel
    from .inputs import InputState
    from .view import ExplorerView

__all__ = ["ExportMixin"]


class ExportMixin:
    """PNG / HTML export, the widget's mime bundle and the saved view of notebooks (see :mod:`.saved`)."""

    # provided by Explorer
    ui: ExplorerView
    method: str
    layer: str
    channel: int
    _last: ViewResult | None
    _saved: SavedView
    _io: ModelIO
    inputs: InputState
    methods: list[str]
    featpanel: FeaturePanel

    if TYPE_CHECKING:  # pragma: no cover

        @property
        def images(self) -> dict[str, bytes]:
            """See :attr:`Explorer.images`."""

        @property
        def messages(self) -> dict[str, str | None]:
            """See :attr:`Explorer.messages`."""

        @property
        def labels(self) -> list[str]:
            """See :attr:`Explorer.labels`."""

        @property
        def status(self) -> str:
            """See :attr:`Explorer.status`."""

        @property
        def display_options(self) -> DisplayOptions:
            """See :attr:`Explorer.display_options`."""

        def wait(self, timeout: float | None = 30.0) -> bool:
            """See :meth:`Explorer.wait`."""

        def state(self) -> dict[str, Any]:
            """See :meth:`Explorer.state`."""

    def to_png(self, path: str | Path | None = None) -> bytes:
        """The current view (input, map, feature map, projection, and the feature visualization the panel shows) as PNG bytes, also written to ``path`` if given.

        Raises
        ------
        InputError
            ``path`` cannot be written (a directory, a missing folder, no permission).
        """
        self.wait(timeout=60)
        data = self._view_png()
        if path is not None:
            write_output(path, data)
        return data

    def _export_panels(self) -> tuple[dict[str, bytes], dict[str, str]]:
        """The panels every export shows: the last render's, plus the feature visualization the panel shows.

        Returns
        -------
        panels, captions
            PNG bytes per panel (``"featviz"`` only while the feature-visualization panel shows
            an image), and the feature visualization's caption (objective, steps, value).
        """
        panels = dict(self.images)
        captions: dict[str, str] = {}
        shown = self.featpanel.result
        if panels and shown is not None:
            panels["featviz"] = shown.png
            captions["featviz"] = shown.caption
        return panels, captions

    def _view_png(self) -> bytes:
        panels, _ = self._export_panels()
        shown = self.featpanel.result
        titled = [
            ("input", "input"), ("map", map_title(self._last, self.method)),
            ("feature", f"{self.layer} filter {self.channel}"), ("projection", "projection"),
            ("featviz", shown.title if shown is not None else ""),
        ]
        # the map panels with their colour scales, drawn from the view model as the widget draws them
        last, opts = self._last, self.display_options
        scales: dict[str, tuple[str, float, str]] = {}
        if last is not None:
            for panel in last.maps:
                drawn = last.render(panel, opts)
                if drawn.rgb is not None:
                    scales[panel] = (opts.sign, drawn.vmax, opts.cmap)
        return view_png(panels, self.messages, titled, scales)

    def to_html(self, path: str | Path | None = None, interactive: bool = False, **options: Any) -> str:
        """The current view as one self-contained HTML page (loads nothing from the network), also written to ``path``.

        ``interactive=True``: precomputed views and a viewer a reader clicks offline, opening on
        this state; ``options`` and defaults as in
        :func:`saliency_widget.viz.interactive_report.explorer_page`; prints what it will compute
        with an upper bound of the page's size (and how to make it smaller when it is over the
        budget), a numbered line per step with the time so far (``progress=`` replaces them),
        and the size.
        """
        from ..viz.report import explorer_html

        self.wait(timeout=60)
        if interactive:
            from ..viz.interactive_report import explorer_page

            # a long export says what it computes, how big the page gets and how far it is (a line per step)
            options.setdefault("progress", lambda line: print(f"  {line}", flush=True))
            built = explorer_page(self.inputs.explainer(), self.state(), name=self.inputs.source or "image", labels=self.labels,
                                  mean=self._io.mean, std=self._io.std, methods=self.methods, **options)
            print(f"interactive view: {built.summary()}")
            page = built.html
        else:
            probs = self._last.probs if self._last is not None else np.zeros(len(self.labels))
            bars = {k: self._last.colorbar(k, self.display_options) for k in self._last.maps} if self._last is not None else {}
            panels, captions = self._export_panels()
            page = explorer_html(panels, self.messages, self.labels, probs, self.state(), self.status, colorbars=bars, captions=captions)
        if path is not None:
            write_output(path, page)
        return page

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """Widget view plus an ``image/png`` of the current view (for front ends that show no widgets)."""
        data = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        if isinstance(data, tuple):  # (data, metadata) form
            data, meta = data
        else:
            meta = None
        data = dict(data or {})
        try:
            data["image/png"] = base64.b64encode(self.to_png()).decode("ascii")
        except Exception:  # the picture is a courtesy; never break display over it
            pass
        return (data, meta) if meta is not None else data

    def _ipython_display_(self) -> None:
        """In a notebook: the widget view, then the saved view that follows every render (see :mod:`.saved`)."""
        from IPython.display import display

        self.wait(timeout=60)
        widget = super()._repr_mimebundle_()  # type: ignore[misc]
        if isinstance(widget, tuple):
            widget = widget[0]
        widget = dict(widget or {})
        widget["text/plain"] = "saliency explorer (needs its kernel; the saved view below shows its last state)"
        display(widget, raw=True)
        self._saved.display(self._view_png(), self.state(), self._saved_caption())

    def _saved_caption(self) -> str:
        shown = self.featpanel.result
        return f"{map_title(self._last, self.method)} · {self.layer} filter {self.channel}" + (f" · {shown.title}" if shown is not None else "")

    def _update_saved_view(self) -> None:
        """After a render: put the new view into the saved view (no-op until the explorer was displayed)."""
        if not self._saved.shown:
            return
        try:
            self._saved.update(self._view_png(), self.state(), self._saved_caption())
        except Exception:  # the saved picture is a courtesy: never fail a shown view over it
            pass
