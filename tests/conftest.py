"""Fixtures shared by the run-level tests."""

import pytest
import torch

from microglia.data import load_dataset


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits with the default validation split (1293 / 144 / 360 samples)."""
    return load_dataset("digits")


@pytest.fixture(autouse=True)
def restore_thread_count():
    """Undo the torch thread count that a run with `threads` set leaves behind.

    The thread count changes the order of floating-point sums, so a test that compares runs
    bit for bit would otherwise depend on the tests before it.
    """
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
