"""Robustness round 3 (issue 26), faithfulness: maps of other dtypes are cast or refused in one line."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from saliency_widget.analysis.faithfulness import pixel_ranking
from saliency_widget.errors import InputError, SaliencyError
from tests.analysis.test_faithfulness import S0, S05, S15, S35, run

S1 = 0.7310585786  # sigmoid(1)


def test_deletion_insertion_accepts_a_boolean_mask_as_a_map() -> None:
    """Item 8: a boolean mask is a map (True = relevant), cast to float, not ``NotImplementedError: abs_cpu ... Bool``."""
    mask = torch.tensor([[[True, False], [True, False]]])  # pixels 0 and 2 first (ties by index), then 1, 3
    res = run(maps={"mask": mask})
    # deletion removes pixel 0, 2, 1, 3: logits 3.5, 1.5, 1, 0, 0
    assert_close(res.curve("deletion", "mask"), torch.tensor([[S35, S15, S1, S0, S0]]))
    assert_close(res.curve("deletion", "mask"), run(maps={"mask": mask.float()}).curve("deletion", "mask"), rtol=0, atol=0)
    assert_close(pixel_ranking(mask[:, None], "morf"), torch.tensor([[0, 2, 1, 3]]))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int32, torch.int64, torch.float16, torch.float64])
def test_deletion_insertion_casts_integer_and_other_float_maps(dtype: torch.dtype) -> None:
    m = torch.tensor([[[4, 2], [1, 0]]]).to(dtype)  # the order of W: pixel 0, 1, 2, 3
    assert_close(run(maps={"m": m}).curve("deletion", "m"), torch.tensor([[S35, S15, S05, S0, S0]]))


@pytest.mark.parametrize(("maps", "message"), [
    ({"c": torch.ones(1, 2, 2, dtype=torch.complex64)}, "map 'c' has complex dtype torch.complex64"),
    ({"m": torch.ones(1, 2, 2, dtype=torch.bool)[..., None]}, "map 'm' has shape (1, 2, 2, 1)"),
])
def test_deletion_insertion_refuses_maps_in_one_line(maps: dict[str, torch.Tensor], message: str) -> None:
    with pytest.raises(InputError) as err:
        run(maps=maps)
    assert isinstance(err.value, SaliencyError) and message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(("m", "message"), [
    (torch.ones(4), "got (4,)"), ([[1.0]], "got list"), (torch.ones(1, 2, 2, dtype=torch.complex64), "complex dtype"),
])
def test_pixel_ranking_refuses_what_is_not_a_map(m: object, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        pixel_ranking(m, "morf")  # type: ignore[arg-type]


class _Scaled(torch.nn.Module):
    """The linear test model on inputs divided by their spread: NaN on a constant (black) image."""

    def __init__(self, nan_logit: bool = False) -> None:
        super().__init__()
        from tests.analysis.test_faithfulness import linear_model

        self.net, self.nan_logit = linear_model(), nan_logit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x / x.flatten(1).std(1).view(-1, 1, 1, 1))
        return out * float("nan") if self.nan_logit else out


def test_deletion_insertion_refuses_a_model_with_a_nan_score_naming_image_and_class() -> None:
    """A NaN logit gave curves of NaN and a table sorted on NaN, silently."""
    from saliency_widget.analysis import deletion_insertion

    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    with pytest.raises(InputError, match=r"the model's score \(logit\) of image 0, class 0 is nan") as err:
        deletion_insertion(_Scaled(nan_logit=True), x, maps={"w": torch.ones(1, 2, 2)}, target=0, steps=4)
    assert "\n" not in str(err.value)


def test_deletion_insertion_refuses_a_model_that_fails_on_the_baseline() -> None:
    from saliency_widget.analysis import deletion_insertion

    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    with pytest.raises(InputError, match=r"the model's score on the deletion baseline \(zeros\) of image 0 is nan") as err:
        deletion_insertion(_Scaled(), x, maps={"w": torch.ones(1, 2, 2)}, target=0, steps=4, baseline="zeros")
    assert "\n" not in str(err.value)


class _NanOnOneHole(torch.nn.Module):
    """The linear test model, NaN on an image with exactly one zero pixel (one pixel deleted to zeros)."""

    def __init__(self) -> None:
        super().__init__()
        from tests.analysis.test_faithfulness import linear_model

        self.net = linear_model()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        holes = (x == 0).flatten(1).sum(1)
        return torch.where((holes == 1)[:, None], torch.full_like(out, float("nan")), out)


def test_deletion_insertion_refuses_a_model_that_fails_on_a_perturbed_image() -> None:
    from saliency_widget.analysis import deletion_insertion

    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    with pytest.raises(InputError, match=r"the model's score on a perturbed image .* of image 0 \(w, deletion, step 1 of 4\) is nan") as err:
        deletion_insertion(_NanOnOneHole(), x, maps={"w": torch.ones(1, 2, 2)}, target=0, steps=4, baseline="zeros",
                           kinds=["deletion"], reference=False)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("kw", "message"), [
    ({"progress": 5}, "progress must be None or a callable"),
    ({"maps": {"m": torch.ones(1, 2, 2, device="meta")}}, "map 'm' is on the 'meta' device"),
])
def test_deletion_insertion_more_bad_arguments_are_one_line(kw: dict[str, object], message: str) -> None:
    with pytest.raises(InputError) as err:
        run(**kw)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(("kw", "message"), [
    ({"methods": "gradient"}, "got 'gradient'; use ['gradient']"),
    ({"methods": []}, "methods must be a non-empty sequence"),
    ({"methods": ["gradient"], "seed": 1.5}, "seed must be an int >= 0, got 1.5"),
    ({"methods": ["gradient"], "seed": "a"}, "seed must be an int >= 0, got 'a'"),
])
def test_faithfulness_vs_randomised_bad_arguments_are_one_line(kw: dict[str, object], message: str) -> None:
    """A method name as a string was mined letter by letter ("unknown method 'g'"); a float seed a raw RuntimeError."""
    from saliency_widget.analysis import faithfulness_vs_randomised
    from saliency_widget.models import shapes_cnn

    with pytest.raises(InputError) as err:
        faithfulness_vs_randomised(shapes_cnn(), torch.rand(1, 3, 32, 32), steps=2, **kw)  # type: ignore[arg-type]
    assert message in str(err.value) and "\n" not in str(err.value)
