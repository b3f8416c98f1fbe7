"""Training-step speed of genlab's Seq2Seq against a plain torch.nn.Transformer of the same size.

Both models get the same token batch (source and target lengths, vocabulary, d_model, heads,
layers, d_ff, dropout, pre-LN, tied output), the same label-smoothed loss and AdamW; runs
alternate (genlab, torch, genlab, ...) so that load on a shared machine hits both alike, and
the median seconds per step are reported with their ratio.

    python benchmarks/translation_step_speed.py --threads 1 --rounds 5 --steps 5
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from genlab.models.seq2seq import Seq2Seq, Seq2SeqConfig, causal_mask, label_smoothed_loss

PAD = 0


class TorchTransformer(nn.Module):
    """The peer: torch.nn.Transformer with embeddings, sinusoid-free learned positions and a tied head."""

    def __init__(self, vocab: int, d: int, heads: int, layers: int, d_ff: int, max_len: int = 256):
        super().__init__()
        self.embed = nn.Embedding(vocab, d, padding_idx=PAD)
        self.pos = nn.Embedding(max_len, d)
        self.core = nn.Transformer(d, heads, layers, layers, d_ff, dropout=0.1, batch_first=True, norm_first=True)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.embed.weight
        self.scale = d ** 0.5

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        s = self.embed(src) * self.scale + self.pos.weight[:src.shape[1]]
        t = self.embed(tgt) * self.scale + self.pos.weight[:tgt.shape[1]]
        y = self.core(s, t, tgt_mask=~causal_mask(tgt.shape[1]), src_key_padding_mask=src == PAD,
                      tgt_key_padding_mask=tgt == PAD, memory_key_padding_mask=src == PAD)
        return self.head(y)


def step_time(model: nn.Module, opt: torch.optim.Optimizer, batch: tuple[torch.Tensor, ...], steps: int) -> float:
    src, tgt_in, tgt_out = batch
    t = time.perf_counter()
    for _ in range(steps):
        loss, _, _ = label_smoothed_loss(model(src, tgt_in), tgt_out, 0.1, PAD)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - t) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--batch", type=int, default=64, help="sentence pairs per batch")
    ap.add_argument("--length", type=int, default=16, help="tokens per sentence (Multi30k's mean is ~15)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    d, L, V = args.d_model, args.layers, args.vocab
    ours = Seq2Seq(Seq2SeqConfig(src_vocab=V, tgt_vocab=V, pad_id=PAD, d_model=d, n_head=8, n_enc=L, n_dec=L,
                                 d_ff=4 * d, dropout=0.1, shared_embeddings=True, tie_output=True))
    peer = TorchTransformer(V, d, 8, L, 4 * d)
    src = torch.randint(3, V, (args.batch, args.length))
    tgt = torch.randint(3, V, (args.batch, args.length + 1))
    batch = (src, tgt[:, :-1], tgt[:, 1:])
    opts = {m: torch.optim.AdamW(m.parameters(), lr=1e-4) for m in (ours, peer)}
    for m in (ours, peer):  # warm-up
        step_time(m, opts[m], batch, 1)
    times: dict[str, list[float]] = {"genlab Seq2Seq": [], "torch.nn.Transformer": []}
    for _ in range(args.rounds):
        times["genlab Seq2Seq"].append(step_time(ours, opts[ours], batch, args.steps))
        times["torch.nn.Transformer"].append(step_time(peer, opts[peer], batch, args.steps))
    med = {k: statistics.median(v) for k, v in times.items()}
    n_ours = sum(p.numel() for p in ours.parameters())
    n_peer = sum(p.numel() for p in peer.parameters())
    print(f"| model | parameters | s / step (median of {args.rounds} x {args.steps}) | ratio |")
    print("|---|---|---|---|")
    print(f"| torch.nn.Transformer | {n_peer:,} | {med['torch.nn.Transformer']:.3f} | 1 |")
    print(f"| genlab Seq2Seq | {n_ours:,} | {med['genlab Seq2Seq']:.3f} | "
          f"{med['torch.nn.Transformer'] / med['genlab Seq2Seq']:.2f}x the peer's speed |")


if __name__ == "__main__":
    main()
