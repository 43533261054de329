"""What every surface decides the same way: class names, the chart's classes, methods and rules.

The widget, the interactive page, the static report, the CLI and batch runs call these, so
each decision (the default class names, which classes get a bar, which methods are valid,
which ReLU rule a projection uses, where a filter is strongest) is made in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

from ..engine import RULES, available_methods
from ..errors import InputError, MethodError, choices

__all__ = [
    "ALL_BARS",
    "TOPK",
    "bar_entries",
    "chart_classes",
    "check_methods",
    "class_name",
    "class_names",
    "projection_rule",
    "projection_rules",
    "strongest",
    "top_classes",
]

TOPK = 5  # classes with a bar (and exported maps) when the model has more than ALL_BARS classes
ALL_BARS = 8  # up to this many classes, every class gets a bar


def class_name(labels: Sequence[object] | None, index: int) -> str:
    """The name of class ``index``: its label, or ``"class <index>"`` when there is none."""
    return str(labels[index]) if labels is not None and 0 <= index < len(labels) else f"class {index}"


def class_names(labels: Sequence[object] | None, k: int) -> list[str]:
    """The ``k`` class names: ``labels`` as text, or ``"class 0"`` .. ``"class k-1"``.

    Raises
    ------
    InputError
        ``labels`` does not have ``k`` entries.
    """
    if labels is None:
        return [class_name(None, i) for i in range(k)]
    names = [str(v) for v in labels]
    if len(names) != k:
        raise InputError(f"labels has {len(names)} entries but the model outputs {k} classes; give one name per class")
    return names


def top_classes(probs: NDArray[np.floating], target: int | None, k: int = TOPK) -> list[int]:
    """The ``k`` most probable classes (ties: lower index first), with ``target`` replacing the last if absent."""
    top = [int(i) for i in np.argsort(-np.asarray(probs), kind="stable")[: min(k, len(probs))]]
    if target is not None and int(target) not in top:
        top[-1] = int(target)  # an explicit target outside the top-k still gets a bar
    return top


def chart_classes(probs: NDArray[np.floating], target: int | None, k: int = TOPK) -> list[int]:
    """The classes that get a bar, most probable first.

    Every class when the model has at most :data:`ALL_BARS`; else :func:`top_classes` (the
    ``k`` most probable, the target always among them).
    """
    n = len(probs)
    return top_classes(probs, target, n if n <= ALL_BARS else k)


def bar_entries(
    probs: NDArray[np.floating], labels: Sequence[str], target: int, k: int | None = None
) -> tuple[tuple[int, str, float], ...]:
    """The class chart's bars: :func:`chart_classes` (or exactly the top ``k``) with their names and probabilities.

    Returns
    -------
    tuple
        ``(class index, bar name, probability)``, most probable first; names are cut to 24
        characters and kept distinct (an ordinal scale merges equal names).
    """
    out, seen = [], set()
    for i in chart_classes(probs, target) if k is None else top_classes(probs, target, k):
        name = str(labels[i])[:24]
        if name in seen:
            name = f"{name} [{i}]"
        seen.add(name)
        out.append((i, name, float(probs[i])))
    return tuple(out)


def strongest(fmap: NDArray[np.floating]) -> tuple[int, int]:
    """``(y, x)`` of the largest value of an ``(h, w)`` feature map, NaN ignored (the first on ties; (0, 0) if none is finite)."""
    f = np.asarray(fmap)
    flat = int(np.nanargmax(f)) if np.isfinite(f).any() else 0
    return flat // f.shape[1], flat % f.shape[1]


def projection_rule(method: str, has_relu: bool = True) -> str:
    """The ReLU rule a projection uses while ``method`` is shown.

    Projections follow a ReLU rule; methods without one (Grad-CAM, occlusion, ...) project
    with DeconvNet, the rule of Zeiler & Fergus. A model without ReLU projects with the
    plain gradient (the only rule defined there), and the view says so.
    """
    if not has_relu:
        return "gradient"
    return method if method in RULES else "deconvnet"


def projection_rules(methods: Iterable[str], has_relu: bool = True) -> dict[str, str]:
    """:func:`projection_rule` of each method (what the offline page's manifest carries)."""
    return {m: projection_rule(m, has_relu) for m in methods}


def check_methods(names: Iterable[str], what: str = "method(s)") -> list[str]:
    """``names`` as a list if every one is a registered method.

    Raises
    ------
    MethodError
        None given, or unknown names (listing the registered ones).
    """
    chosen = list(names)
    known = available_methods()
    bad = [m for m in chosen if m not in known]
    if bad or not chosen:
        raise MethodError(f"unknown {what} {bad or chosen}; expected names from {choices(known)}")
    return chosen
