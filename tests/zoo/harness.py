"""A built zoo family for the module-scoped fixture of tests/zoo/test_zoo.py, and the xfail / table bookkeeping.

The fixture is parametrized (indirectly, per test) over :class:`~tests.zoo.checks.Case` s and
calls :func:`built_family`; pytest groups the tests by its parameter, so each family is built
once, checked every way, and released before the next one is built.
"""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Iterator
from typing import Any

import pytest
from torch import nn

import saliency_widget as sw
from tests.zoo.checks import Case, Row, image, seeded_build, table_row, third_size


class Family:
    """A built family: the model at the check size, its Explainer, and (lazily) the twin's layers."""

    def __init__(self, case: Case, source: str) -> None:
        self.case = case
        self.source = source
        t0 = time.perf_counter()
        self.model: nn.Module = seeded_build(lambda: case.build(case.size))
        self.x = image(case.size)
        self.explainer = sw.Explainer(self.model, self.x)
        self.target = int(self.explainer.logits.argmax(1))
        self.seconds = time.perf_counter() - t0
        self.row: Row = table_row(case, source, self.explainer)

    @functools.cached_property
    def twin_layers(self) -> list[sw.LayerInfo]:
        case = self.case
        # a model fixed to one input size at construction is built again for the twin size (same seed)
        twin = seeded_build(lambda: case.build(case.twin)) if case.fixed_size else self.model
        return sw.layers(twin, image(case.twin, seed=6))

    def third_layers(self) -> list[sw.LayerInfo]:
        """The layers at the coincidence check's third size (asked only for grids that fit two sizes with a wide border)."""
        case, size = self.case, third_size(self.case.size, self.case.twin)
        model = seeded_build(lambda: case.build(size)) if case.fixed_size else self.model
        return sw.layers(model, image(size, seed=8))

    @functools.cached_property
    def explorer(self) -> Any:
        from saliency_widget.widget import explore

        w = explore(self.model, image(self.case.size, seed=7)[0])
        assert w.wait(600)
        return w

    def close(self) -> None:
        if "explorer" in self.__dict__:
            self.explorer.close()


def built_family(case: Case, source: str) -> Iterator[Family]:
    """The fixture body: build ``case``, yield it, release it (and its explorer) afterwards."""
    fam = Family(case, source)
    try:
        yield fam
    finally:
        fam.close()
        del fam
        gc.collect()


def expect(request: pytest.FixtureRequest, case: Case, check: str) -> None:
    """Mark the running test a strict xfail when ``case`` lists ``check`` as a known failure."""
    reason = case.xfail.get(check)
    if reason is not None:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


def record(fam: Family, check: str, ok: str) -> None:
    """Set ``check``'s outcome in the family's table row."""
    fam.row.outcomes[check] = ok
