"""Deletion / insertion: progress callbacks, cancelling between batches, ranking rows, reference only."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from saliency_widget.analysis import deletion_insertion
from saliency_widget.analysis.faithfulness import RANDOM
from saliency_widget.errors import Cancelled, InputError
from tests.analysis.test_faithfulness import MAP, S0, S05, S2, S3, S15, S35, X, linear_model, run
from tests.helpers import assert_unchanged, snapshot


def test_progress_counts_every_forward_pass() -> None:
    seen: list[tuple[int, int]] = []
    # 1 image, steps 4: image + 2 baselines, then (map + random) x 2 kinds x 3 inner points = 12 in batches of 5
    run(batch_size=5, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 15), (2, 15), (3, 15), (8, 15), (13, 15), (15, 15)]


def test_false_from_progress_stops_before_the_next_batch() -> None:
    calls: list[int] = []
    model = linear_model()
    before = snapshot(model)

    def stop_after_two(done: int, total: int) -> bool:
        calls.append(done)
        return len(calls) < 4  # the image, two baselines, one batch of perturbed copies, then stop

    with pytest.raises(Cancelled, match="stopped after 8 of 15"):
        deletion_insertion(model, X, maps={"w": MAP}, target=0, steps=4, baseline="zeros", batch_size=5,
                           progress=stop_after_two)
    assert calls == [1, 2, 3, 8]
    assert_unchanged(model, before)  # eval mode and no_grad are undone on the cancel path too


def test_ranking_rows_are_sorted_by_score() -> None:
    res = run(maps={"w": MAP, "reversed": MAP.flip(-1).flip(-2)})
    rows = res.ranking()
    assert [r[0] for r in rows][0] == "w"  # most relevant pixels first: the fastest fall and rise
    d = 0.125 * (S35 + 2 * (S15 + S05 + S0) + S0)
    i = 0.125 * (S0 + 2 * (S2 + S3 + S35) + S35)
    assert_close(torch.tensor(rows[0][1:]), torch.tensor([d, i, i - d]))
    scores = [r[3] for r in rows]
    assert scores == sorted(scores, reverse=True) and {r[0] for r in rows} == {"w", "reversed", RANDOM}
    assert_close(torch.tensor(res.ranking(image=0)[0][1:]), torch.tensor(rows[0][1:]))


def test_reference_only_with_empty_maps() -> None:
    res = deletion_insertion(linear_model(), X, maps={}, target=0, steps=4, baseline="zeros")
    assert res.methods == [] and sorted(res.curves) == [("deletion", RANDOM), ("insertion", RANDOM)]
    assert_close(res.curve("deletion", RANDOM)[:, [0, -1]], torch.tensor([[S35, S0]]))


def test_nothing_to_compute_raises() -> None:
    with pytest.raises(InputError, match="nothing to compute"):
        deletion_insertion(linear_model(), X, maps={}, target=0, steps=4, reference=False)
