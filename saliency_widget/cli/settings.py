"""The explorer's method settings on the command line: one ``--<setting>`` flag each, generated from their specs.

``render`` (and ``render --data``) offer every field of
:class:`~saliency_widget.views.settings.MethodSettings` as a flag (``lrp_composite`` is
``--lrp-composite``), so a new setting is a new flag without an edit here.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import InputError
from ..views.settings import MethodSettings, setting_specs
from ..views.spec import check_value

__all__ = ["add_setting_arguments", "method_settings"]


def add_setting_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--<setting>`` per method setting of the explorer (``--lrp-composite``, ``--ig-steps``, ...), from their specs."""
    group = parser.add_argument_group("method settings", "the explorer's method settings (docs/methods.md); each "
                                      "applies to the methods it names, default: the explorer's default")
    for spec in setting_specs():
        flag = "--" + spec.name.replace("_", "-")
        default = spec.default if spec.default != "" else "the engine's choice"
        if spec.kind == "choice" and spec.choices:
            group.add_argument(flag, dest=spec.name, default=None, choices=spec.choices, help=f"{spec.help} (default: {default})")
        else:
            what = "NAME" if spec.kind == "choice" else spec.kind.upper()
            group.add_argument(flag, dest=spec.name, default=None, metavar=what,
                               help=f"{spec.help}; {spec.what} in {spec.range_text} (default: {default})" if spec.kind in ("int", "float")
                               else f"{spec.help} (default: {default})")


def method_settings(args: argparse.Namespace) -> MethodSettings:
    """The method settings given on the command line (the others at their defaults).

    Raises
    ------
    InputError
        A value that is not a number where one is expected, or out of its range (naming the flag).
    """
    given: dict[str, Any] = {}
    for spec in setting_specs():
        raw = getattr(args, spec.name, None)
        if raw is None:
            continue
        flag = "--" + spec.name.replace("_", "-")
        try:
            value: Any = int(raw) if spec.kind == "int" else float(raw) if spec.kind == "float" else raw
            given[spec.name] = check_value(spec, value) if spec.kind != "choice" or spec.choices else value
        except (ValueError, InputError):
            raise InputError(f"{flag} must be {spec.what} in {spec.range_text}, got {raw!r}") from None
    return MethodSettings.of(given)
