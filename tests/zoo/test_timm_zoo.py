"""timm families (tiny configs): gradient, default Grad-CAM, layouts, and every method in the headless explorer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from saliency_widget.engine import available_methods
from tests.zoo.harness import Family, built_family, check_default, check_gradcam, check_gradient, check_twin, check_widget
from tests.zoo.timm_cases import CASES

pytest.importorskip("timm")
pytest.importorskip("pytorch_grad_cam")


@pytest.fixture(scope="module", params=[c.param() for c in CASES])
def family(request: pytest.FixtureRequest) -> Iterator[Family]:
    yield from built_family(request.param, "timm")


def test_gradient_equals_autograd(family: Family, request: pytest.FixtureRequest) -> None:
    check_gradient(family, request)


def test_default_gradcam_matches_pytorch_grad_cam(family: Family, request: pytest.FixtureRequest) -> None:
    check_gradcam(family, request)


def test_default_gradcam_layer_is_what_the_classifier_pools(family: Family, request: pytest.FixtureRequest) -> None:
    check_default(family, request)


def test_no_layer_is_spatial_by_coincidence(family: Family, request: pytest.FixtureRequest) -> None:
    check_twin(family, request)


@pytest.mark.parametrize("method", available_methods())
def test_widget_renders_or_says_why(family: Family, method: str, request: pytest.FixtureRequest) -> None:
    check_widget(family, method, request)
