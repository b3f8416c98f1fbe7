"""`genlab serve`: trained run directories behind an OpenAI-compatible HTTP API and a web page.

    from genlab.serve import serve_runs
    serve_runs(["runs/gpt"], port=8000)          # what `genlab serve runs/gpt` does

create_app (serve/app.py) builds the FastAPI app over loaded models; serve/batching.py decodes
concurrent text requests together; serve/models.py decides what a run is (text or sampler).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError


def load_models(runs: list[str], max_batch: int = 16, max_queue: int = 64, device: str = "auto",
                weights: str = "float32") -> dict[str, Any]:
    """`RUN` or `NAME=RUN` arguments -> {model id: ServedModel}. Ids are the run folder names;
    `weights` lays out the language models among them for decoding (genlab.api.load)."""
    from .. import api
    from .models import ServedModel

    named: dict[str, str] = {}
    for arg in runs:
        name, _, path = arg.partition("=") if "=" in arg else ("", "", arg)
        name = name or Path(path).resolve().name
        if name in named:
            raise ConfigError(f"two runs would both be model {name!r}: name one with NAME=RUN")
        named[name] = path
    return {name: ServedModel(name, api.load(path, device=device, weights=weights), max_batch=max_batch,
                              max_queue=max_queue) for name, path in named.items()}


def serve_runs(runs: list[str], host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
               limits: Any = None, device: str = "auto", weights: str = "float32") -> None:
    """Load the runs and serve them until interrupted (Ctrl-C shuts down gracefully)."""
    try:
        import uvicorn

        from .app import Limits, create_app
    except ImportError as e:
        raise ConfigError(f"genlab serve needs the serve extra: pip install 'genlab[serve]' ({e})") from None
    limits = limits or Limits()
    models = load_models(runs, limits.max_batch, limits.max_queue, device, weights)
    app = create_app(models, api_key=api_key, limits=limits)
    print(f"genlab: serving {', '.join(models)} on http://{host}:{port}/", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10)


__all__ = ["load_models", "serve_runs"]
