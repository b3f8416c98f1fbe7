"""The recipe registry: name -> class, imported lazily so `genlab list` stays quick."""
from __future__ import annotations

import importlib

from ..errors import GenlabError
from .base import Recipe, SampleOptions

# name -> "module:Class" (relative to genlab.recipes)
REGISTRY: dict[str, str] = {
    "classifier": "classifier:ClassifierRecipe",
    "gan-curve": "toy_gans:CurveGANRecipe",
    "gan-pattern": "toy_gans:PatternGANRecipe",
    "diffusion": "diffusion:DiffusionRecipe",
    "gpt": "gpt:GPTRecipe",
    "lstm-lm": "lstm_lm:LSTMRecipe",
    "gan-mlp": "image_gans:MLPGANRecipe",
    "dcgan": "image_gans:DCGANRecipe",
    "cgan": "image_gans:CGANRecipe",
    "cyclegan": "cyclegan:CycleGANRecipe",
    "autoencoder": "autoencoders:AutoencoderRecipe",
    "vae": "autoencoders:VAERecipe",
    "translation": "translation:TranslationRecipe",
}


def get_recipe(name: str) -> type[Recipe]:
    if name not in REGISTRY:
        raise GenlabError(f"unknown recipe '{name}' (available: {', '.join(sorted(REGISTRY))})")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(f".{module}", __name__), cls)


def all_recipes() -> list[type[Recipe]]:
    return [get_recipe(n) for n in REGISTRY]


__all__ = ["REGISTRY", "Recipe", "SampleOptions", "get_recipe", "all_recipes"]
