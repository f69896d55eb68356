from __future__ import annotations

from collections.abc import Callable

import pytest

import odm

from .models import ALL


@pytest.fixture
def reg(make_registry: Callable[..., odm.Registry]) -> odm.Registry:
    """A registry with every suite model registered and synced on the backend under test."""
    return make_registry(*ALL)
