"""Shared test fixtures."""

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[1]
SUBPROCESS_ENV = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}


@pytest.fixture
def shared_data() -> Path:
    """The shared real datasets at <repo>/../shared/data; skips the test when absent."""
    path = REPO.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared datasets not found at {path}")
    return path


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tests train tiny models: one intra-op thread is as fast as two on an idle machine and
    many times faster when other processes keep the cores busy (OpenMP threads wait on each other)."""
    import torch

    before, omp = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"   # caps threads=0 (automatic) too: no step probe, one thread
    yield
    torch.set_num_threads(before)
    if omp is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = omp


@pytest.fixture
def torchrun() -> Callable[..., subprocess.CompletedProcess]:
    """torchrun(*genlab_args, nproc=2): `python -m torch.distributed.run ... -m genlab ARGS` on
    a free local port, one thread per process; returns the finished process (text output)."""
    def run(*args: str, nproc: int = 2, timeout: float = 600) -> subprocess.CompletedProcess:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", f"--nproc_per_node={nproc}",
               f"--master_port={port}", "-m", "genlab", *args]
        return subprocess.run(cmd, env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=timeout)
    return run


@pytest.fixture
def quick_feature_nets(monkeypatch, tmp_path):
    """The image metrics' feature nets train for 3 steps, cached in the test's own folder."""
    from genlab.metrics import feature_net

    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "cache"))
    real = feature_net.get_feature_net
    monkeypatch.setattr(feature_net, "get_feature_net",
                        lambda d, s, c, steps=None, robust=False: real(d, s, c, steps=3, robust=robust))


@pytest.fixture
def image_folder() -> Callable[..., Path]:
    """image_folder(root, classes=("a", "b"), n=10, corrupt=True): an image folder of random 12x12
    PNGs, one sub-folder per class (each class a different brightness), plus one corrupt file."""
    def make(root: Path, classes: tuple[str, ...] = ("a", "b"), n: int = 10, corrupt: bool = True) -> Path:
        import numpy as np
        from PIL import Image

        rng = np.random.default_rng(0)
        for k, name in enumerate(classes):
            d = root / name
            d.mkdir(parents=True)
            for i in range(n):
                a = (rng.random((12, 12, 3)) * 80 + 150 * k).astype(np.uint8)
                Image.fromarray(a).save(d / f"{i}.png")
        if corrupt:
            (root / classes[0] / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
        return root
    return make


@pytest.fixture
def training_recipe() -> Callable[..., Any]:
    """training_recipe(name, overrides): the recipe set up for training on CPU, its optimizers
    built and its modules in train mode: ready for batch() / training_step() by hand."""
    def make(name: str, overrides: dict[str, Any]) -> Any:
        from genlab.api import build_config
        from genlab.recipes import get_recipe

        cls = get_recipe(name)
        r = cls(build_config(cls, overrides={"device": "cpu", **overrides}), "cpu")
        r.setup(training=True)
        r.optimizers = r.build_optimizers()
        r.set_mode(True)
        return r
    return make
