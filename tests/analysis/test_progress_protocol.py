"""One progress/cancel protocol (engine.progress + errors.Cancelled) for maps, faithfulness, top-9 and mining.

A caller wraps any long call in ``reporting(callback)``; the callback gets ``(done, total)``
between batches and stops the work by raising :class:`~saliency_widget.errors.Cancelled` or
returning False. The model is left as it was on the cancel path.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from saliency_widget.analysis import deletion_insertion, mine, top_activations
from saliency_widget.engine.progress import callback, report, reporting
from saliency_widget.errors import Cancelled, SaliencyError
from saliency_widget.models import shapes_cnn
from tests.analysis.test_faithfulness import MAP, X, linear_model
from tests.helpers import assert_unchanged, seeded_rand, snapshot
from tests.nets import small_cnn

IMAGES = seeded_rand(10, 3, 16, 16, seed=7)  # 10 images, batches of 4: 4, 8, 10 seen


def test_cancelled_is_in_the_error_family() -> None:
    assert issubclass(Cancelled, SaliencyError)


def test_a_false_return_is_cancelled_naming_the_progress() -> None:
    with pytest.raises(Cancelled, match=r"^stopped after 3 of 7$"), reporting(lambda d, t: d < 3):
        report(1, 7)
        report(3, 7)


def test_reporting_nests_and_restores() -> None:
    def outer(d: int, t: int) -> None:
        return None

    def inner(d: int, t: int) -> None:
        return None

    with reporting(outer):
        with reporting(inner):
            assert callback() is inner
        assert callback() is outer
    assert callback() is None


# ---------------------------------------------------------------- faithfulness
def test_faithfulness_reports_to_an_enclosing_reporting() -> None:
    seen: list[tuple[int, int]] = []
    with reporting(lambda d, t: seen.append((d, t))):
        deletion_insertion(linear_model(), X, maps={"w": MAP}, target=0, steps=4, baseline="zeros", batch_size=5)
    assert seen == [(1, 15), (2, 15), (3, 15), (8, 15), (13, 15), (15, 15)]


@pytest.mark.parametrize("how", ["raise", "return-false"])
def test_faithfulness_stops_with_cancelled(how: str) -> None:
    model = linear_model()
    before = snapshot(model)

    def stop(done: int, total: int) -> bool:
        if done >= 8:
            if how == "raise":
                raise Cancelled("a newer request")
            return False
        return True

    with pytest.raises(Cancelled), reporting(stop):
        deletion_insertion(model, X, maps={"w": MAP}, target=0, steps=4, baseline="zeros", batch_size=5)
    assert_unchanged(model, before)


def test_faithfulness_can_be_stopped_inside_the_maps_it_computes() -> None:
    model = small_cnn()
    before = snapshot(model)
    seen: list[tuple[int, int]] = []

    def stop(done: int, total: int) -> None:
        seen.append((done, total))
        raise Cancelled("stop")

    x = seeded_rand(1, 3, 32, 32, seed=2)
    with pytest.raises(Cancelled):
        deletion_insertion(model, x, methods=["occlusion"], target=1, steps=3, progress=stop)
    assert seen == [(0, 0)]  # the occlusion's first batch, before any faithfulness forward pass
    assert_unchanged(model, before)


# ---------------------------------------------------------------- top-9
def test_top_activations_report_images_seen_of_the_total() -> None:
    seen: list[tuple[int, int]] = []
    with reporting(lambda d, t: seen.append((d, t))):
        top_activations(small_cnn(), torch.utils.data.TensorDataset(IMAGES), "features.1", k=2, progress=False, project=False, batch_size=4)
    assert seen == [(4, 10), (8, 10), (10, 10)]


def test_top_activations_of_batches_without_length_report_total_zero() -> None:
    seen: list[tuple[int, int]] = []
    with reporting(lambda d, t: seen.append((d, t))):
        top_activations(small_cnn(), [IMAGES[:4], IMAGES[4:]], "features.1", k=2, progress=False, project=False)
    assert seen == [(4, 0), (10, 0)]


def test_top_activations_stop_with_cancelled_and_leave_the_model() -> None:
    model = small_cnn()
    before = snapshot(model)
    with pytest.raises(Cancelled), reporting(lambda d, t: d < 8):
        top_activations(model, torch.utils.data.TensorDataset(IMAGES), "features.1", k=2, progress=False, batch_size=4)
    assert_unchanged(model, before)


# ---------------------------------------------------------------- mining
def test_mining_reports_and_a_cancelled_scan_resumes(tmp_path: Path) -> None:
    model = shapes_cnn()
    data = torch.utils.data.TensorDataset(seeded_rand(10, 3, 32, 32, seed=5))
    before = snapshot(model)
    seen: list[tuple[int, int]] = []

    def stop_at_8(done: int, total: int) -> bool:
        seen.append((done, total))
        return done < 8

    with pytest.raises(Cancelled, match="stopped after 8 of 10"), reporting(stop_at_8):
        mine(model, data, ["features.relu1"], tmp_path / "idx", k=2, batch_size=4, checkpoint_every=1, progress=False)
    assert seen == [(4, 10), (8, 10)]
    assert_unchanged(model, before)
    index = mine(model, data, ["features.relu1"], tmp_path / "idx", k=2, batch_size=4, checkpoint_every=1, progress=False)
    fresh = mine(model, data, ["features.relu1"], tmp_path / "fresh", k=2, batch_size=4, progress=False)
    assert index.top("features.relu1", 0) == fresh.top("features.relu1", 0)
