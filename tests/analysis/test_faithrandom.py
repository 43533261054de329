"""Faithfulness of maps from a randomised copy: which layers change, names, the model untouched."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from saliency_widget.analysis import deletion_insertion, faithfulness_vs_randomised, randomised_copy
from saliency_widget.engine import saliency
from saliency_widget.errors import InputError
from tests.helpers import assert_unchanged, seeded_rand, snapshot
from tests.nets import small_cnn

# small_cnn's parameterised layers, bottom to top: features.0, features.3, fc


@pytest.mark.parametrize(
    ("top", "changed"),
    [(1, {"fc"}), (2, {"fc", "features.3"}), (None, {"fc", "features.3", "features.0"})],
)
def test_randomised_copy_changes_the_top_layers_only(top: int | None, changed: set[str]) -> None:
    model = small_cnn()
    before = snapshot(model)
    rand = randomised_copy(model, top)
    orig = dict(model.named_parameters())
    differs = {n.rsplit(".", 1)[0] for n, p in rand.named_parameters() if not torch.equal(p, orig[n])}
    assert differs == changed
    assert_unchanged(model, before)


@pytest.mark.parametrize("top", [0, 4, 1.5, True])
def test_bad_top_raises(top: object) -> None:
    with pytest.raises(InputError, match="top must be None or an int in 1..3"):
        randomised_copy(small_cnn(), top)  # type: ignore[arg-type]


def test_randomised_maps_are_scored_on_the_trained_model() -> None:
    model = small_cnn()
    x = seeded_rand(2, 3, 8, 8, seed=3)
    before = snapshot(model)
    res = faithfulness_vs_randomised(model, x, ["gradient"], target=1, top=1, steps=4)
    assert res.methods == ["gradient", "gradient (top layers randomised)"]
    rand_map = saliency(randomised_copy(model, 1), x, torch.tensor([1, 1]), "gradient")
    ref = deletion_insertion(model, x, maps={"r": rand_map}, target=1, steps=4, reference=False)
    assert_close(res.curve("deletion", "gradient (top layers randomised)"), ref.curve("deletion", "r"))
    assert_unchanged(model, before)
