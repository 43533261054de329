"""Robustness round 3 (issue 26), the interactive export: bad options and non-finite scores are one line."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from saliency_widget.engine import Explainer
from saliency_widget.errors import InputError, SaliencyError
from saliency_widget.viz.bundle import Packer
from saliency_widget.viz.interactive import collect_image, grid_positions
from saliency_widget.viz.interactive_report import interactive_report
from tests.helpers import LABELS, rgb_image, to_tensor
from tests.nets import sequential_cnn, small_cnn


class _BadScore(nn.Module):
    """The wrapped net with one class's logit replaced by ``value`` (NaN, inf)."""

    def __init__(self, value: float, cls: int = 1) -> None:
        super().__init__()
        self.net = small_cnn()
        self.value, self.cls = value, cls

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        mask = torch.zeros_like(out, dtype=torch.bool)
        mask[:, self.cls] = True
        return torch.where(mask, torch.full_like(out, self.value), out)


def _one_line(err: pytest.ExceptionInfo[BaseException]) -> str:
    assert isinstance(err.value, SaliencyError)
    assert "\n" not in str(err.value)
    return str(err.value)


@pytest.mark.parametrize("grid", [2.5, -1, True, "2", None])
def test_interactive_export_with_grid_2_5_is_one_line(grid: Any) -> None:
    """Item 12: ``grid=2.5`` was a raw TypeError from ``range``; it names the value and what is expected."""
    with pytest.raises(InputError, match=r"grid must be an int >= 0 .*got") as err:
        interactive_report([rgb_image(1)], small_cnn(), methods=["gradient"], labels=list(LABELS[:3]), transform=to_tensor,
                           names=["noise"], topk=2, grid=grid)
    assert repr(grid) in _one_line(err)


@pytest.mark.parametrize(("value", "shown"), [(float("nan"), "nan"), (float("inf"), "inf"), (float("-inf"), "-inf")])
def test_interactive_export_with_a_nan_logit_names_the_class_and_image(value: float, shown: str) -> None:
    """Item 12: a NaN (or infinite) score was ``ValueError: Out of range float values are not JSON compliant``."""
    labels = list(LABELS[:3])
    with pytest.raises(InputError) as err:
        interactive_report([rgb_image(0), rgb_image(1)], _BadScore(value), methods=["gradient"], labels=labels,
                           transform=to_tensor, names=["first.png", "second.png"], topk=2)
    text = _one_line(err)
    assert f"image 'first.png': the model's score (logit) of class 1 ({labels[1]!r}) is {shown}" in text
    assert "cannot export non-finite scores" in text


def test_collect_image_accepts_numpy_and_tensor_ints_and_a_huge_grid() -> None:
    ex = Explainer(sequential_cnn(), to_tensor(rgb_image(3)).unsqueeze(0))
    entry = collect_image(ex, Packer(), name="x", methods=["gradient"], topk=np.int64(2), layers=["7"],  # type: ignore[arg-type]
                          channels=torch.tensor([0, 3]), grid=10**9, target=np.int64(1))  # type: ignore[arg-type]
    h, w = entry["layers"][0]["shape"][1:]
    assert grid_positions(h, w, 10**9) == [(y, x) for y in range(h) for x in range(w)]
    assert len(entry["layers"][0]["projections"][0]) == h * w
    assert entry["target"] == 1


@pytest.mark.parametrize(("kw", "message"), [
    ({"target": 1.5}, "target 1.5 out of range for"),
    ({"target": True}, "target True out of range for"),
    ({"layers": "7"}, "layers must be a list of layer keys, got the string '7'; use ['7']"),
    ({"layers": ["7"], "channels": ["a"]}, "channels of 7 must be filter indices (ints), got ['a']"),
    ({"layers": ["7"], "channels": [1.5]}, "channels of 7 must be filter indices (ints), got [1.5]"),
])
def test_collect_image_bad_options_are_one_line(kw: dict[str, Any], message: str) -> None:
    ex = Explainer(sequential_cnn(), to_tensor(rgb_image(0)).unsqueeze(0))
    with pytest.raises(InputError) as err:
        collect_image(ex, Packer(), name="x", methods=["gradient"], **kw)
    assert message in _one_line(err)


def test_static_report_with_a_nan_logit_shows_it_as_nan() -> None:
    """The static report exports a NaN score as such ("nan" in the table) instead of ``ValueError: cannot convert float NaN``."""
    from saliency_widget.viz.report import render_report

    rep = render_report([rgb_image(0)], _BadScore(float("nan")), ["gradient"], labels=list(LABELS[:3]), transform=to_tensor)
    assert ">nan</td>" in rep.html


@pytest.mark.parametrize(("images", "names", "message"), [
    (2, ["only one"], "give one name per image: 2 image(s), 1 name(s)"),
    (0, [], "no images to export"),
])
def test_interactive_report_never_drops_an_image_without_a_name(images: int, names: list[str], message: str) -> None:
    """``zip(images, names)`` silently exported only the named images."""
    with pytest.raises(InputError) as err:
        interactive_report([rgb_image(i) for i in range(images)], small_cnn(), methods=["gradient"], labels=list(LABELS[:3]),
                           transform=to_tensor, names=names, topk=2)
    assert message in _one_line(err)
