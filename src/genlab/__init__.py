"""genlab: a workbench for generative models built from scratch in PyTorch.

    import genlab
    run = genlab.train("gan-curve", overrides={"max_steps": 500})
    run = genlab.load("runs/gan-curve")
    run.sample(n=256)          # Python objects
    run.evaluate()             # held-out metrics
"""
from ._version import __version__
from .api import Run, list_recipes, load, train
from .errors import GenlabError

__all__ = ["__version__", "Run", "GenlabError", "list_recipes", "load", "train"]
