"""One intra-op thread for these tiny models: on a shared 2-core machine, two spinning threads per
process made the tests ~100x slower under load, and tiny convolutions gain nothing from two."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
