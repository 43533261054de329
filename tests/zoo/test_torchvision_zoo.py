"""Every torchvision classification builder: gradient, default Grad-CAM, layouts (see tests/zoo/checks.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.zoo.harness import Family, built_family, check_default, check_gradcam, check_gradient, check_twin
from tests.zoo.torchvision_cases import CASES

pytest.importorskip("pytorch_grad_cam")


@pytest.fixture(scope="module", params=[c.param() for c in CASES])
def family(request: pytest.FixtureRequest) -> Iterator[Family]:
    yield from built_family(request.param, "torchvision")


def test_gradient_equals_autograd(family: Family, request: pytest.FixtureRequest) -> None:
    check_gradient(family, request)


def test_default_gradcam_matches_pytorch_grad_cam(family: Family, request: pytest.FixtureRequest) -> None:
    check_gradcam(family, request)


def test_default_gradcam_layer_is_what_the_classifier_pools(family: Family, request: pytest.FixtureRequest) -> None:
    check_default(family, request)


def test_no_layer_is_spatial_by_coincidence(family: Family, request: pytest.FixtureRequest) -> None:
    check_twin(family, request)
