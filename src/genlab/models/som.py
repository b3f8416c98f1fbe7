"""A self-organizing map (Kohonen): a grid of units, each holding a codebook vector.

For each input the best-matching unit (BMU, the nearest codebook vector) wins, and every
unit moves toward the input by lr * exp(-d^2 / 2 sigma^2), d its grid distance to the
winner. Training shrinks sigma and lr over time, so the map first orders itself globally,
then refines locally. This is the batch-of-samples form: the moves of a batch are averaged.
"""
from __future__ import annotations

import torch
from torch import nn


class SOM(nn.Module):
    def __init__(self, rows: int, cols: int, dim: int):
        super().__init__()
        self.rows, self.cols = rows, cols
        self.codebook = nn.Parameter(torch.rand(rows * cols, dim), requires_grad=False)
        r, c = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
        self.register_buffer("grid", torch.stack([r.flatten(), c.flatten()], 1).float(), persistent=False)

    def distances(self, x: torch.Tensor) -> torch.Tensor:
        """Squared distance of each input to each unit, (B, units)."""
        return torch.cdist(x, self.codebook) ** 2

    def bmu(self, x: torch.Tensor) -> torch.Tensor:
        return self.distances(x).argmin(1)

    @torch.no_grad()
    def update(self, x: torch.Tensor, lr: float, sigma: float) -> float:
        """One batch update; returns the batch's quantization error before it."""
        d = self.distances(x)
        win = d.argmin(1)
        grid_d2 = ((self.grid[win][:, None, :] - self.grid[None]) ** 2).sum(-1)     # (B, units)
        theta = torch.exp(-grid_d2 / (2 * sigma ** 2))
        # each unit moves toward the theta-weighted mean of the batch, by lr * mean theta
        weight = theta.sum(0)                                                        # (units,)
        target = theta.t() @ x / weight.clamp(min=1e-12)[:, None]
        step = lr * (weight / len(x))[:, None]
        self.codebook.add_(step * (target - self.codebook))
        return float(d.gather(1, win[:, None]).sqrt().mean())

    @torch.no_grad()
    def quantization_error(self, x: torch.Tensor) -> float:
        """Mean distance from each input to its best-matching unit's vector."""
        return float(self.distances(x).min(1).values.clamp(min=0).sqrt().mean())

    @torch.no_grad()
    def topographic_error(self, x: torch.Tensor) -> float:
        """Share of inputs whose best and second-best units are not grid neighbours (8-connected)."""
        two = self.distances(x).topk(2, dim=1, largest=False).indices
        gap = (self.grid[two[:, 0]] - self.grid[two[:, 1]]).abs().amax(1)
        return float((gap > 1).float().mean())

    @torch.no_grad()
    def u_matrix(self) -> torch.Tensor:
        """(rows, cols): each unit's mean distance to its 4-connected neighbours' vectors."""
        w = self.codebook.reshape(self.rows, self.cols, -1)
        total = torch.zeros(self.rows, self.cols)
        count = torch.zeros(self.rows, self.cols)
        for dr, dc in ((0, 1), (1, 0)):
            a, b = w[:self.rows - dr, :self.cols - dc], w[dr:, dc:]
            dist = (a - b).norm(dim=-1)
            total[:self.rows - dr, :self.cols - dc] += dist
            count[:self.rows - dr, :self.cols - dc] += 1
            total[dr:, dc:] += dist
            count[dr:, dc:] += 1
        return total / count.clamp(min=1)
