"""Fixtures for every test: a seeded global RNG and fresh warn-once state.

Shared nets live in ``tests/nets.py`` and helpers in ``tests/helpers.py``; import them explicitly.
"""

from __future__ import annotations

import pytest
import torch

from saliency_widget.errors import reset_warnings


@pytest.fixture(autouse=True)
def _seed_and_fresh_warnings() -> None:
    """Seed torch's global RNG (0) and forget which warn-once warnings were shown, before each test."""
    torch.manual_seed(0)
    reset_warnings()
