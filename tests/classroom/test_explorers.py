"""The classroom explorers driven from Python: the ReLU-rules explorer (its 2x2 default example) and the transposed-convolution explorer (TF conv2d_transpose defaults)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from saliency_widget import InputError
from saliency_widget.classroom.explorers import ReLURulesExplorer, TransposedConvExplorer, parse_matrix


def test_relu_explorer_defaults_are_the_2x2_example() -> None:
    e = ReLURulesExplorer()
    assert_close(e.results["forward"], torch.tensor([[1.0, 0.0], [0.0, 5.0]], dtype=torch.float64))
    assert_close(e.results["gradient"], torch.tensor([[-2.0, 0.0], [0.0, 8.0]], dtype=torch.float64))
    assert_close(e.results["deconvnet"], torch.tensor([[0.0, 0.0], [4.0, 8.0]], dtype=torch.float64))
    assert_close(e.results["guided_backprop"], torch.tensor([[0.0, 0.0], [0.0, 8.0]], dtype=torch.float64))


def test_relu_explorer_updates_and_colours() -> None:
    e = ReLURulesExplorer()
    e.x_text.value = "3 -1 0"
    e.r_text.value = "-1 2 5"
    assert_close(e.results["deconvnet"], torch.tensor([[0.0, 2.0, 5.0]], dtype=torch.float64))
    assert_close(e.results["guided_backprop"], torch.tensor([[0.0, 0.0, 0.0]], dtype=torch.float64))
    # guided at x=3,R=-1: zeroed by the signal mask; at x=-1,R=2: by the forward mask
    assert "#ffe2c2" in e.out.value and "#d6e4ff" in e.out.value
    e.r_text.value = "1 2"
    assert "same shape" in e.error.value
    e.r_text.value = "1 2 oops"
    assert "cannot read" in e.error.value
    e.r_text.value = "1 1 1"
    assert e.error.value == "" and e.results["gradient"].tolist() == [[1.0, 0.0, 0.0]]


def test_parse_matrix_rejects_ragged() -> None:
    with pytest.raises(InputError, match="rectangular"):
        parse_matrix("1 2; 3")


def test_transposed_explorer_defaults_reproduce_tf_conv2d_transpose() -> None:
    e = TransposedConvExplorer()
    assert_close(e.output, torch.tensor([[1, 1, 3, 2], [1, 1, 3, 2], [4, 4, 10, 6], [3, 3, 7, 4]], dtype=torch.float64))
    assert e.checks["gradient_max_abs_diff"] < 1e-12
    assert e.checks["roundtrip_max_abs_diff"] > 1e-3
    assert "uneven overlap" in e.out.value


@pytest.mark.parametrize("padding", ["same", "valid", 0, 1, 2])
@pytest.mark.parametrize(("k", "s"), [(3, 2), (4, 2), (2, 1), (5, 3)])
def test_transposed_explorer_all_settings(padding: object, k: int, s: int) -> None:
    e = TransposedConvExplorer()
    e.kernel.value, e.stride.value = k, s
    e.padding.value = padding
    if isinstance(padding, int) and padding > k - 1:
        assert "at most kernel size" in e.error.value
        return
    assert e.error.value == ""
    assert e.checks["gradient_max_abs_diff"] < 1e-9
    if isinstance(padding, int):
        assert_close(e.output, F.conv_transpose2d(torch.arange(1.0, 5.0, dtype=torch.float64).view(1, 1, 2, 2), torch.ones(1, 1, k, k, dtype=torch.float64), stride=s, padding=padding)[0, 0])


def test_transposed_explorer_output_padding() -> None:
    e = TransposedConvExplorer()
    e.padding.value = 1
    e.output_padding.value = 1
    assert e.error.value == "" and e.output.shape == (4, 4)  # (2-1)*2 - 2 + 3 + 1
    e.output_padding.value = 2
    assert "smaller than the stride" in e.error.value
