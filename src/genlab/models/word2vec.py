"""word2vec (Mikolov et al. 2013): skip-gram and CBOW trained with negative sampling.

Two embedding tables, as in the original C tool and gensim: `inp` holds the word vectors
people use, `out` the context ("syn1neg") vectors the negatives are scored against. `out`
starts at zero and `inp` uniformly in +-0.5/dim, the reference initialisation.

    loss = -log sigmoid(out[pos] . h) - sum_k log sigmoid(-out[neg_k] . h)

where h is the centre word's vector (skip-gram) or the mean of the context vectors (CBOW).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def negative_sampling_loss(h: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Per-row loss: h (B, D) against one positive output vector pos (B, D) and negatives (B, K, D)."""
    pos_score = (h * pos).sum(-1)
    neg_score = torch.einsum("bd,bkd->bk", h, neg)
    return -F.logsigmoid(pos_score) - F.logsigmoid(-neg_score).sum(-1)


class Word2Vec(nn.Module):
    def __init__(self, vocab_size: int, dim: int, cbow: bool = False):
        super().__init__()
        self.cbow = cbow
        # sparse gradients: a step touches a few thousand rows of a large vocabulary
        self.inp = nn.Embedding(vocab_size, dim, sparse=True)
        self.out = nn.Embedding(vocab_size, dim, sparse=True)
        nn.init.uniform_(self.inp.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.out.weight)

    def forward(self, centre: torch.Tensor, context: torch.Tensor, mask: torch.Tensor,
                negatives: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(summed loss, number of pairs) of a batch. centre (B,), context (B, W) word ids with mask (B, W) marking
        real context slots, negatives (B, W, K) for skip-gram or (B, K) for CBOW."""
        m = mask.float()
        if self.cbow:  # the mean of the context vectors predicts the centre word
            total = (self.inp(context) * m[..., None]).sum(1)
            mean = total / m.sum(1, keepdim=True).clamp(min=1)
            # as in the C tool and gensim (cbow_mean=1): every context vector receives the whole
            # error of h, not 1/count of it (the forward value is still the mean)
            h = total - (total - mean).detach()
            loss = negative_sampling_loss(h, self.out(centre), self.out(negatives))
            keep = m.amax(1)  # a centre with no context word teaches nothing
            return (loss * keep).sum(), keep.sum()
        # skip-gram: the centre word predicts each context word
        b, w = context.shape
        h = self.inp(centre)[:, None, :].expand(b, w, -1).reshape(b * w, -1)
        loss = negative_sampling_loss(h, self.out(context).reshape(b * w, -1),
                                      self.out(negatives).reshape(b * w, negatives.shape[-1], -1))
        return (loss * m.reshape(-1)).sum(), m.sum()

    def vectors(self) -> torch.Tensor:
        return self.inp.weight.detach()
