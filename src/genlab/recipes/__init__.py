"""The recipe registry: name -> where the class lives, with the lines `genlab list` prints.

The one-line summary and default-data description live here, not on the classes, so that
listing recipes imports no recipe module (and no torch); a class is imported on first use.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import GenlabError

if TYPE_CHECKING:
    from .base import Recipe, SampleOptions


@dataclass(frozen=True)
class RecipeEntry:
    target: str          # "module:Class", relative to genlab.recipes
    summary: str         # one line for `genlab list`
    default_data: str    # the embedded dataset used without --data


REGISTRY: dict[str, RecipeEntry] = {
    "classifier": RecipeEntry(
        "classifier:ClassifierRecipe",
        "image classifier (the book's MLPs, binary variant, a small CNN); metric: accuracy",
        "scikit-learn's 1,797 bundled 8x8 digits, upscaled to 28x28"),
    "gan-curve": RecipeEntry(
        "toy_gans:CurveGANRecipe",
        "GAN that learns points (x, y) on a curve; metrics: MSE to the curve, x-coverage",
        "2,048 points of y = 1.08^x, x in [0, 50] (any fn=... expression)"),
    "gan-pattern": RecipeEntry(
        "toy_gans:PatternGANRecipe",
        "GAN that learns integers with a pattern as one-hot vectors; metrics: valid share, coverage",
        "multiples of 5 in 0-99, one-hot (or a file of integers)"),
    "clip": RecipeEntry(
        "clip:CLIPRecipe",
        "CLIP-style dual encoder (image CNN + text Transformer over BPE), contrastive with a learned "
        "temperature; zero-shot attribute accuracy, retrieval recall@1/@5",
        "procedural 16x16 faces with captions written from their parameters (or a captioned image folder)"),
    "diffusion": RecipeEntry(
        "diffusion:DiffusionRecipe",
        "Denoising diffusion (DDPM/DDIM, attention U-Net, EMA, classifier-free guidance); FID/KID",
        "procedural 16x16 faces (dataset=digits|mnist, or --data an image folder / IDX files)"),
    "gpt": RecipeEntry(
        "gpt:GPTRecipe",
        "GPT (decoder-only Transformer) language model; metrics: val loss, perplexity, bits/char, novelty",
        "Python's documentation topics (pydoc_data, ~0.5 MB of English), any .txt file or folder"),
    "lstm-lm": RecipeEntry(
        "lstm_lm:LSTMRecipe",
        "LSTM language model (char/word/BPE tokens); metrics: perplexity, bits/char, novelty",
        "Python's documentation topics (pydoc_data, ~0.5 MB of English), any .txt file or folder"),
    "gan-mlp": RecipeEntry(
        "image_gans:MLPGANRecipe",
        "fully connected GAN for small greyscale images (28x28); metrics: FID/KID/precision/recall",
        "Fashion-MNIST if installed, else scikit-learn 8x8 digits upscaled to 28x28 (MNIST: --data DIR)"),
    "dcgan": RecipeEntry(
        "image_gans:DCGANRecipe",
        "DCGAN (transposed convs + batch norm) on images; metrics: FID/KID/precision/recall",
        "procedural 32x32 faces (any image folder with --data)"),
    "cgan": RecipeEntry(
        "cgan:CGANRecipe",
        "conditional WGAN-GP (labels into generator and critic); metrics: FID/KID, "
        "share of samples showing the requested attribute",
        "procedural 16x16 faces labelled glasses / no glasses (image folder: sub-folders are classes)"),
    "cyclegan": RecipeEntry(
        "cyclegan:CycleGANRecipe",
        "CycleGAN: unpaired image-to-image translation between two folders; metrics: FID, "
        "attribute flipped / preserved, round-trip error",
        "procedural 32x32 faces, black hair (A) <-> blond hair (B), unpaired"),
    "autoencoder": RecipeEntry(
        "autoencoders:AutoencoderRecipe",
        "image autoencoders (dense 784-200-20, stacked, tied, conv, denoising, sparse); reconstruction error",
        "sklearn's 8x8 digits upscaled to 28x28 (dataset=mnist|fashion-mnist|faces, or an image folder)"),
    "vae": RecipeEntry(
        "vae:VAERecipe",
        "convolutional VAE (correct KL, beta); prior samples, interpolation, attribute arithmetic; ELBO, FID",
        "procedural 32x32 faces with attributes (dataset=digits|mnist|fashion-mnist, or an image folder)"),
    "translation": RecipeEntry(
        "translation:TranslationRecipe",
        "encoder-decoder Transformer translation; metrics: sacreBLEU, chrF (greedy + beam), val loss, perplexity",
        "procedural English-French scene descriptions (--data: a folder like Multi30k's, NAME.en + NAME.fr, a TSV)"),
    "musegan": RecipeEntry(
        "musegan:MuseGANRecipe",
        "MuseGAN: multi-track piano rolls from a WGAN-GP (chords/style/melody/groove latents); metrics: "
        "empty bars, pitch classes, qualified notes, tonal distance, MIDI parse rates",
        "Bach's four-part chorales from music21's corpus (a JSB .json or a MIDI folder with --data)"),
    "music-transformer": RecipeEntry(
        "music_transformer:MusicTransformerRecipe",
        "Music Transformer: decoder-only Transformer over MIDI performance events (390 tokens); continues a "
        "prompt MIDI; metrics: NLL per event vs unigram and untrained, musical statistics, parse rates",
        "Bach's chorales from music21's corpus played as events (a JSB .json or a MIDI folder with --data)"),
    "word2vec": RecipeEntry(
        "word2vec:Word2VecRecipe",
        "word2vec embeddings (skip-gram / CBOW, negative sampling, subsampling); neighbours, analogies, "
        "PCA plot, word2vec-format export; held-out loss, Google analogies, WordSim-353 / SimLex-999",
        "Python's documentation topics (pydoc_data, ~0.5 MB of English), any .txt file or folder"),
    "rbm": RecipeEntry(
        "rbm:RBMRecipe",
        "Bernoulli restricted Boltzmann machine (CD-k, persistent CD); Gibbs chains; pseudo-log-likelihood, "
        "AIS log-likelihood estimate, FID beside an untrained RBM",
        "scikit-learn's 8x8 digits, binarized (dataset=mnist|fashion-mnist, or an image folder)"),
    "som": RecipeEntry(
        "som:SOMRecipe",
        "self-organizing map (winner-take-all units, shrinking neighbourhood); map picture, U-matrix; "
        "quantization and topographic error",
        "4,000 random RGB colours (dataset=digits: scikit-learn's 8x8 digits; --data a CSV of vectors)"),
}


def recipe_entry(name: str) -> RecipeEntry:
    if name not in REGISTRY:
        raise GenlabError(f"unknown recipe '{name}' (available: {', '.join(sorted(REGISTRY))})")
    return REGISTRY[name]


def get_recipe(name: str) -> type["Recipe"]:
    module, cls = recipe_entry(name).target.split(":")
    return getattr(importlib.import_module(f".{module}", __name__), cls)


def all_recipes() -> list[type["Recipe"]]:
    return [get_recipe(n) for n in REGISTRY]


def __getattr__(name: str) -> Any:
    """`from genlab.recipes import Recipe` without importing torch for `genlab list`."""
    if name in ("Recipe", "SampleOptions"):
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["REGISTRY", "Recipe", "RecipeEntry", "SampleOptions", "all_recipes", "get_recipe", "recipe_entry"]
