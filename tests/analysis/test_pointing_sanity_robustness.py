"""Robustness round 3 (issue 26), pointing game and sanity check: hostile arguments are one line, huge tolerances cost nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saliency_widget.analysis import pointing_game
from saliency_widget.analysis.pointing import dilate, hits
from saliency_widget.errors import InputError
from tests.nets import small_cnn


@pytest.mark.parametrize("tolerance", [float("nan"), -1, "2", True, None])
def test_dilate_refuses_a_tolerance_that_is_not_a_number_at_least_zero(tolerance: object) -> None:
    """NaN passed ``tolerance < 0`` and died in ``int(nan)``."""
    with pytest.raises(InputError, match=r"tolerance must be a number >= 0 \(pixels\), got") as err:
        dilate(torch.zeros(1, 4, 4, dtype=torch.bool), tolerance)  # type: ignore[arg-type]
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("tolerance", [5.0, 1e12, float("inf"), np.float32(100.0)])
@pytest.mark.parametrize("distance", ["euclidean", "chebyshev"])
def test_dilate_with_a_tolerance_beyond_the_image_reaches_every_pixel_without_a_huge_kernel(tolerance: float, distance: str) -> None:
    """A disc wider than the image's diagonal (4x4: 5.66) covers it: inf or 1e12 built a (2r+1)^2 kernel before."""
    masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    masks[0, 3, 0] = True  # image 1 has an empty mask: nothing to reach
    grown = dilate(masks, tolerance, distance)
    assert grown[0].all() and not grown[1].any()
    assert hits(torch.rand(2, 4, 4), masks, tolerance, distance).tolist() == [True, False]


def test_pointing_game_refuses_masks_that_are_not_tensors() -> None:
    batch = (torch.rand(2, 3, 32, 32), torch.tensor([0, 1]), np.zeros((2, 32, 32), bool))
    with pytest.raises(InputError, match="must yield tensors .* masks ndarray") as err:
        pointing_game(small_cnn(), [batch], methods=["gradient"])
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("kw", "message"), [
    ({"seed": 1.5}, "seed must be an int >= 0, got 1.5"),
    ({"seed": "a"}, "seed must be an int >= 0, got 'a'"),
    ({"layers": "features.0"}, "got 'features.0'; use ['features.0']"),
])
def test_sanity_check_bad_arguments_are_one_line(kw: dict[str, object], message: str) -> None:
    """A float seed was a raw RuntimeError; a layer name as a string was split into letters."""
    from saliency_widget.analysis import sanity_check

    with pytest.raises(InputError) as err:
        sanity_check(small_cnn(), torch.rand(1, 3, 16, 16), **kw)  # type: ignore[arg-type]
    assert message in str(err.value) and "\n" not in str(err.value)
