"""The result of :func:`~saliency_widget.analysis.deletion_insertion`: curves, AUCs, ranking.

Kept apart from the computation so that the widget, the reports and the docs read one type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..errors import InputError, choices

__all__ = ["KINDS", "RANDOM", "FaithfulnessResult", "merge_results"]

KINDS = ("deletion", "insertion")
"""The two curves of every method."""

RANDOM = "random"
"""Name of the random-order reference curve in a :class:`FaithfulnessResult`."""


@dataclass
class FaithfulnessResult:
    """Deletion and insertion curves per method and image, with the random-order reference.

    Attributes
    ----------
    methods
        Method names in the order given (maps first, then computed methods); the random
        reference is stored under :data:`RANDOM` and is not listed here.
    fractions
        ``(steps + 1,)`` fraction of the pixels perturbed at each point, 0 to 1.
    curves
        ``{(kind, method): (N, steps + 1)}`` class probabilities; ``kind`` in :data:`KINDS`.
        Deletion starts at the image and ends at the baseline; insertion the reverse.
    targets
        ``(N,)`` class indices whose probability is tracked.
    order
        ``"morf"`` or ``"lerf"``.
    baseline
        Description of the baselines used, per kind.
    """

    methods: list[str]
    fractions: torch.Tensor
    curves: dict[tuple[str, str], torch.Tensor]
    targets: torch.Tensor
    order: str
    baseline: dict[str, str] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        """Number of perturbation steps (each curve has ``steps + 1`` points)."""
        return int(self.fractions.numel()) - 1

    def _check(self, kind: str, method: str) -> None:
        if kind not in KINDS:
            raise InputError(f"kind must be one of {choices(KINDS)}, got {kind!r}")
        if (kind, method) not in self.curves:
            have = sorted({m for _, m in self.curves}, key=[*self.methods, RANDOM].index)
            if method in have:
                raise InputError(f"no {kind} curve was computed; pass kinds=({kind!r}, ...) to deletion_insertion")
            raise InputError(f"no curve for method {method!r}; choose from {choices(have)}")

    def curve(self, kind: str, method: str) -> torch.Tensor:
        """Class probability after each step.

        Parameters
        ----------
        kind
            ``"deletion"`` or ``"insertion"``.
        method
            A method name from :attr:`methods`, or :data:`RANDOM`.

        Returns
        -------
        torch.Tensor
            ``(N, steps + 1)``; column 0 is before any pixel is perturbed.
        """
        self._check(kind, method)
        return self.curves[(kind, method)]

    def auc(self, kind: str, method: str) -> torch.Tensor:
        """Area under the curve over the perturbed fraction in [0, 1] (trapezoid rule).

        Returns
        -------
        torch.Tensor
            ``(N,)``, one value per image, in [0, 1].
        """
        c = self.curve(kind, method)
        return torch.trapezoid(c, x=self.fractions.to(c), dim=1)

    def score(self, method: str) -> torch.Tensor:
        """Insertion AUC minus deletion AUC, ``(N,)``: higher is more faithful (for MoRF order).

        For ``"lerf"`` the sign flips (deleting the least relevant pixels first should keep
        the probability up), so higher is still better.
        """
        s = self.auc("insertion", method) - self.auc("deletion", method)
        return s if self.order == "morf" else -s

    def ranking(self, image: int | None = None) -> list[tuple[str, float, float, float]]:
        """``(method, deletion AUC, insertion AUC, score)`` per method, best first.

        Methods (and the random reference, under :data:`RANDOM`, when computed) are sorted by
        :meth:`score`, highest first: low deletion AUC and high insertion AUC under MoRF. Ties
        keep the order of :attr:`methods`.

        Parameters
        ----------
        image
            Index of one image, or None for the mean over the images.
        """
        if len({k for k, _ in self.curves}) < len(KINDS):
            raise InputError("a ranking needs both deletion and insertion curves; compute them with the default kinds")
        listed = [*self.methods, RANDOM] if any(m == RANDOM for _, m in self.curves) else list(self.methods)

        def pick(v: torch.Tensor) -> float:
            return float(v.mean() if image is None else v[image])

        rows = [(m, pick(self.auc("deletion", m)), pick(self.auc("insertion", m)), pick(self.score(m))) for m in listed]
        return sorted(rows, key=lambda r: -r[3])

    def table(self) -> str:
        """Markdown table of the mean AUCs over the images, best method first.

        Methods are sorted as in :meth:`ranking`; the random reference is listed at its
        place in the ranking, in italics.
        """
        rows = [
            "| method | deletion AUC | insertion AUC | insertion - deletion |",
            "|---|---:|---:|---:|",
        ]
        for m, d, i, _ in self.ranking():
            label = "*random order (reference)*" if m == RANDOM else m
            rows.append(f"| {label} | {d:.3f} | {i:.3f} | {i - d:+.3f} |")
        return "\n".join(rows)


def merge_results(parts: Sequence[FaithfulnessResult]) -> FaithfulnessResult:
    """One result from results of the same images, steps and order (e.g. one per method).

    Curves of a method in several parts: the last one wins. The targets, fractions, order
    and baselines are the first part's.
    """
    if not parts:
        raise InputError("merge_results needs at least one FaithfulnessResult")
    curves: dict[tuple[str, str], torch.Tensor] = {}
    methods: list[str] = []
    for p in parts:
        curves.update(p.curves)
        methods += [m for m in p.methods if m not in methods]
    first = parts[0]
    return FaithfulnessResult(methods, first.fractions, curves, first.targets, first.order, dict(first.baseline))
