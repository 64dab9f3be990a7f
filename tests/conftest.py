"""Fixtures shared by the run-level tests."""

import pytest

from microglia.data import load_dataset


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits with the default validation split (1293 / 144 / 360 samples)."""
    return load_dataset("digits")
