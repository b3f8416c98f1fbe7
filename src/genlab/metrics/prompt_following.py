"""Prompt-following on the procedural faces: ask a generator for every glasses x blond x smiling
combination and count how often the attribute judge (metrics/feature_net.py) sees what was asked.

A sample the judge does not see as a face follows nothing, so a model cannot score by drawing
noise that happens to trip an attribute head.
"""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch

from ..data.faces import ATTRIBUTES


def attribute_combinations(n_per: int) -> np.ndarray:
    """(2^A * n_per, A) 0/1 rows: each combination of the A face attributes, n_per times in a row."""
    combos = list(itertools.product((0, 1), repeat=len(ATTRIBUTES)))
    return np.array([combo for combo in combos for _ in range(n_per)])


def prompt_following(images: torch.Tensor, wanted: np.ndarray, judge: Any) -> dict[str, float]:
    """{"follow_<attribute>": share of images showing the wanted value of that attribute,
    "follow_all": share showing all of them, "face_rate": share seen as faces}, by `judge`
    (an AttributeClassifier: judge(images) -> (is_face (N,), predicted (N, A)))."""
    face, pred = judge.judge(images)
    correct = (pred == wanted) & face[:, None]   # a sample that is not a face follows nothing
    out = {f"follow_{a}": float(correct[:, k].mean()) for k, a in enumerate(ATTRIBUTES)}
    out["follow_all"] = float(correct.all(1).mean())
    out["face_rate"] = float(face.mean())
    return out


__all__ = ["attribute_combinations", "prompt_following"]
