"""The commands' shared toolbox: a parser whose usage errors are exceptions, and one-line failures.

Every command (``render``, ``render --data``, ``mine``, ``classroom``) reports any error the
same way: one line ``saliency-widget: error: ...`` on stderr and exit status 2. A command
module builds its options on a :class:`Parser` and runs its body through :func:`run_reporting`.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from typing import NoReturn

from torch import nn

from ..errors import InputError, SaliencyError
from ..models.loading import MODEL_SPECS, load_model

__all__ = ["EXIT_ERROR", "MODEL_HELP", "Parser", "UsageError", "fail", "one_line", "read_model", "run_reporting", "split_list"]

EXIT_ERROR = 2
"""Exit status of every failed command (argparse's own convention for usage errors)."""


class UsageError(SaliencyError):
    """A command-line usage error found by argparse (reported like any other error)."""


class Parser(argparse.ArgumentParser):
    """argparse, but usage errors are raised (as :class:`UsageError`) so they are reported as one line."""

    def error(self, message: str) -> NoReturn:
        """Raise :class:`UsageError` with argparse's ``message`` instead of printing usage and exiting."""
        raise UsageError(message)


def one_line(message: str) -> str:
    """``message`` with every run of whitespace (newlines included) folded into one space."""
    return " ".join(str(message).split())


def fail(message: str, prog: str = "saliency-widget") -> int:
    """Print ``message`` as one error line on stderr; return the error exit status (2)."""
    print(f"{prog}: error: {one_line(message)}", file=sys.stderr)
    return EXIT_ERROR


def run_reporting(body: Callable[[], int], prog: str = "saliency-widget") -> int:
    """Run a command's ``body``; turn any expected failure into one line on stderr and exit status 2.

    Expected failures are the package's errors (:class:`~saliency_widget.errors.SaliencyError`,
    usage errors included), a library's input check (``ValueError``) and the file system
    (``OSError``: an unreadable input, an unwritable output). Anything else is a bug and keeps
    its traceback. Warnings shown meanwhile are one line each too: ``saliency-widget: warning: ...``.
    """
    def one_line_warning(message: Warning | str, category: type[Warning], *_rest: object, **_kw: object) -> str:
        return f"{prog}: warning: {one_line(str(message))} ({category.__name__})\n"

    formatted = warnings.formatwarning
    warnings.formatwarning = one_line_warning  # printed warnings as one line each, like the errors (recorders still record)
    try:
        return body()
    except (SaliencyError, ValueError) as err:
        return fail(str(err), prog)
    except OSError as err:
        name = f" {err.filename!r}" if getattr(err, "filename", None) else ""
        return fail(f"{err.strerror or err}{name}", prog)
    finally:
        warnings.formatwarning = formatted


def split_list(spec: str, option: str, what: str = "name") -> list[str]:
    """Split a comma-separated option value into its non-empty, stripped items.

    Raises
    ------
    InputError
        ``spec`` names nothing (empty, or only commas and spaces).
    """
    items = [s.strip() for s in spec.split(",") if s.strip()]
    if not items:
        raise InputError(f"{option} {spec!r} names no {what}; give a comma-separated list")
    return items


MODEL_HELP = "a model spec: " + ", ".join(MODEL_SPECS)
"""The ``--model`` help of every command (the spec forms come from :mod:`saliency_widget.models.loading`)."""


def read_model(spec: str) -> nn.Module:
    """The model of a ``--model`` value (:func:`saliency_widget.models.load_model`), errors naming ``--model``."""
    try:
        return load_model(spec)
    except SaliencyError as err:
        message = str(err)
        raise type(err)(f"--{message}" if message.startswith("model ") else f"--model: {message}") from err
