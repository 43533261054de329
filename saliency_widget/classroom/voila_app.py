"""Voilà, as ``saliency-widget classroom`` runs it: dashboards whose kernels end when their tab closes.

Voilà 0.5's page asks the server to shut its kernel down on ``beforeunload``: it sends a
``POST /voila/api/shutdown/<kernel id>`` beacon whose ``_xsrf`` field it reads from the
``_xsrf`` cookie. Voilà's dashboard handler never sets that cookie (only pages rendered from
Jupyter's own templates touch ``xsrf_token``), so the request is refused with
``403 '_xsrf' argument missing from POST`` and every visit leaves a kernel behind (upstream
voila-dashboards/voila#1458). Here every Voilà page handler sets the cookie before it answers,
so the page and the server agree and XSRF protection stays on.

Run as ``python -m saliency_widget.classroom.voila_app <folder> [Voilà options]``; it takes the
same options as ``voila``. Imports Voilà, so only the classroom command loads this module.
"""

from __future__ import annotations

from typing import Any

from voila.app import Voila
from voila.handler import BaseVoilaHandler

__all__ = ["ClassroomVoila", "main", "with_xsrf_cookie"]

_WRAPPED: dict[type, type] = {}


def with_xsrf_cookie(handler: type) -> type:
    """A subclass of a Voilà page handler that sets the ``_xsrf`` cookie before it answers.

    Tornado sets the cookie on the first read of ``xsrf_token``; reading it in ``prepare``
    (after authentication, before any byte of the streamed page) puts ``Set-Cookie`` in the
    headers of the dashboard and of the start page.
    """
    if handler not in _WRAPPED:

        class _Page(handler):  # type: ignore[valid-type,misc]
            async def prepare(self, *args: Any, **kwargs: Any) -> None:
                await super().prepare(*args, **kwargs)
                self.xsrf_token  # noqa: B018  # read for its side effect: the Set-Cookie header

        _Page.__name__ = _Page.__qualname__ = f"Classroom{handler.__name__}"
        _WRAPPED[handler] = _Page
    return _WRAPPED[handler]


class ClassroomVoila(Voila):  # type: ignore[misc]  # Voilà ships no type hints
    """Voilà whose page handlers set the XSRF cookie that the page's kernel-shutdown beacon sends."""

    def init_handlers(self) -> list[Any]:
        """Voilà's handlers, each page handler replaced by :func:`with_xsrf_cookie` of it."""
        out = []
        for spec in super().init_handlers():
            pattern, handler, *rest = spec
            if isinstance(handler, type) and issubclass(handler, BaseVoilaHandler):
                handler = with_xsrf_cookie(handler)
            out.append((pattern, handler, *rest))
        return out


def main() -> None:
    """Entry point: ``ClassroomVoila.launch_instance()`` on ``sys.argv``."""
    ClassroomVoila.launch_instance()


if __name__ == "__main__":
    main()
