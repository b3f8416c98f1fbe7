"""genlab: a workbench for generative models built from scratch in PyTorch.

    import genlab
    run = genlab.train("gan-curve", overrides={"max_steps": 500})
    run = genlab.load("runs/gan-curve-001")
    run.sample(n=256)          # a typed output (genlab.outputs): Texts, Images, Points, ...
    run.evaluate()             # held-out metrics
    genlab.average("runs/translation-001", last=5)   # mean of the last 5 kept checkpoints (keep_checkpoints)
    genlab.load("runs/translation-001", which="averaged")
    genlab.show_data("vae")    # what a recipe trains on, as the same typed output (no training)

The API (and torch) is imported on first use, so `genlab --help` and `genlab list` answer at once.
"""
import importlib
from typing import Any

from ._version import __version__
from .errors import GenlabError

_API = ("Run", "average", "list_recipes", "load", "show_data", "train")


def __getattr__(name: str) -> Any:
    if name in _API or name == "api":
        api = importlib.import_module(".api", __name__)
        return api if name == "api" else getattr(api, name)
    raise AttributeError(f"module 'genlab' has no attribute {name!r}")


__all__ = ["__version__", "Run", "GenlabError", "average", "list_recipes", "load", "show_data", "train"]
