"""The GPT tests use tiny models: one intra-op thread is as fast as two, and far faster when
other processes keep the cores busy (OpenMP threads then wait on each other)."""
import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
