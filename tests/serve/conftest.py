"""Fixtures for the server tests: a tiny trained GPT, a stand-in image model, a live server on 127.0.0.1."""
from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

import genlab
from genlab.errors import ConfigError
from genlab.outputs import Images
from genlab.recipes.base import SampleOptions

TEXT = ("the cat sat on the mat. a dog ran in the park! we like to read books, "
        "rain falls on the town. she sang a quiet song; ") * 60
TINY_GPT = {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 96, "batch_size": 8, "max_steps": 30,
            "eval_every": 0, "save_every": 0, "warmup_steps": 2, "lr": 1e-2, "novelty_samples": 0,
            "tokenizer": "char"}


@pytest.fixture(scope="session")
def text_run_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("serve-gpt")
    (folder / "corpus.txt").write_text(TEXT, encoding="utf-8")
    genlab.train("gpt", data=folder / "corpus.txt", overrides=TINY_GPT, out=folder / "tiny", progress=False)
    return folder / "tiny"


@dataclass
class FaceSample(SampleOptions):
    n: int = 4
    mode: str = "grid"
    label: int = 1


class FaceRecipe:
    """A stand-in conditional image model: a class's images are bright (glasses) or dark."""

    name = "stand-in-faces"
    Sample = FaceSample
    label_names = ["no glasses", "glasses"]

    def generate(self, opts: FaceSample) -> Images:
        if opts.mode != "label":
            raise ConfigError("this stand-in only draws one label at a time")
        rng = np.random.default_rng(opts.seed)
        base = 200 if opts.label == 1 else 40
        imgs = np.clip(base + rng.integers(-30, 30, (opts.n, 8, 8, 3)), 0, 255).astype(np.uint8)
        return Images(imgs, labels=[self.label_names[opts.label]] * opts.n)


class StandInRun:
    """Run's interface as the server uses it: .recipe, .path, .sample(**options)."""

    def __init__(self, recipe, path: Path):
        self.recipe, self.path = recipe, path

    def sample(self, **options):
        opts = self.recipe.Sample(**options)
        return self.recipe.generate(opts)


@pytest.fixture(scope="session")
def face_run(tmp_path_factory) -> StandInRun:
    return StandInRun(FaceRecipe(), tmp_path_factory.mktemp("faces"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def free_port():
    return _free_port


@pytest.fixture(scope="session")
def subprocess_env() -> dict[str, str]:
    """The environment for `python -m genlab` subprocesses: this tree's src first, one thread."""
    src = str(Path(__file__).resolve().parents[2] / "src")
    return {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}


class LiveServer:
    """uvicorn in a thread on 127.0.0.1, stopped (gracefully) on close()."""

    def __init__(self, app):
        import uvicorn

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error",
                                                    timeout_graceful_shutdown=5))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture(scope="session")
def start_server():
    """start_server(runs={name: run}, api_key=None, **limits) -> LiveServer; all closed at the end."""
    from genlab.serve.app import Limits, create_app
    from genlab.serve.models import ServedModel

    servers = []

    def start(runs: dict, api_key: str | None = None, **limits) -> LiveServer:
        lim = Limits(**limits)
        models = {n: ServedModel(n, r, lim.max_batch, lim.max_queue) for n, r in runs.items()}
        server = LiveServer(create_app(models, api_key=api_key, limits=lim))
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.close()


@pytest.fixture(scope="session")
def text_run(text_run_dir):
    return genlab.load(text_run_dir)


@pytest.fixture(scope="session")
def server(start_server, text_run, face_run) -> LiveServer:
    """The shared server: model "tiny" (text) and "faces" (conditional images), no key."""
    return start_server({"tiny": text_run, "faces": face_run})
