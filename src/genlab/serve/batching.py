"""Continuous batching: one thread per text model decodes every running request together.

Each loop of the thread is one decoding step for the whole batch:

    1. admit waiting requests (up to `max_batch` rows): prefill their prompts together (left-
       padded), sample their first tokens, and splice their key/value caches into the batch's;
    2. one forward pass over the batch with one new token per row (the KV cache holds the rest);
    3. sample every row's next token with that row's own generator, stream the text, and drop
       rows that finished (end-of-text, stop string, max_tokens) or whose client went away.

Rows have different lengths. genlab's GPT takes `pad` (models/gpt.py): the batch's cache is
left-padded to a common length, padded slots are masked out of attention and each row keeps
the positions it would have alone. So a row sees exactly the numbers it would see decoded on
its own, up to float rounding of a differently shaped matmul, and sampling with a request's
`seed` (a generator seeded `seed`, as `sampling.generate` does for row 0) picks the same tokens
as `sampling.generate`. A model without `pad` runs one request at a time (max_batch=1).

The prompt plus max_tokens must fit the model's context (the server checks it and answers
400 otherwise), so the window never slides here.
"""
from __future__ import annotations

import inspect
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from ..sampling.logits import next_token, penalize_repetition

Emit = Callable[[str, Any], None]  # ("text", piece) | ("done", Finished) | ("error", message)


class QueueFull(Exception):
    """The waiting queue is at its bound: the caller answers 429."""


class ShuttingDown(Exception):
    """The batcher no longer takes requests."""


@dataclass
class Finished:
    tokens: list[int]
    text: str
    finish_reason: str  # "length" | "eos" | "stop" | "cancelled"


@dataclass
class Job:
    """One sequence to generate (a request with n choices submits n of these)."""

    prompt_ids: list[int]
    max_new_tokens: int
    emit: Emit
    decode: Callable[[Sequence[int]], str]
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    eos_id: int | None = None
    seed: int | None = None
    cancelled: bool = False
    submitted: float = field(default_factory=time.monotonic)

    def cancel(self) -> None:
        self.cancelled = True


class _Row:
    """A running sequence: its tokens, generator and the text streamed so far."""

    def __init__(self, seq: Job):
        self.seq = seq
        seed = seq.seed if seq.seed is not None else int.from_bytes(os.urandom(7), "little")
        self.gen = torch.Generator().manual_seed(seed)
        self.tokens: list[int] = []
        self.finish_reason = "length"
        self.stop_at: int | None = None
        self.emitted = 0      # characters of text already streamed
        self.searched = 0     # text before this index holds no stop string
        self.hold = max(map(len, seq.stop), default=1) - 1

    def add(self, token: int) -> bool:
        """Record a sampled token and stream what is safe; True when the row is finished."""
        s = self.seq
        if s.eos_id is not None and token == s.eos_id:
            self.finish_reason = "eos"
            return True
        self.tokens.append(token)
        text = s.decode(self.tokens)
        if s.stop:
            hits = [i for i in (text.find(x, self.searched) for x in s.stop) if i >= 0]
            if hits:
                self.stop_at, self.finish_reason = min(hits), "stop"
                return True
            self.searched = max(0, len(text) - self.hold)
        if len(self.tokens) >= s.max_new_tokens:
            return True
        safe = len(text) - self.hold
        while safe > self.emitted and text[safe - 1] == "\ufffd":  # maybe half a UTF-8 character
            safe -= 1
        if safe > self.emitted:
            s.emit("text", text[self.emitted:safe])
            self.emitted = safe
        return False

    def finish(self) -> None:
        text = self.seq.decode(self.tokens)
        if self.stop_at is not None:
            text = text[:self.stop_at]
        if len(text) > self.emitted:
            self.seq.emit("text", text[self.emitted:])
        self.seq.emit("done", Finished(self.tokens, text, self.finish_reason))


def _accepts(model: torch.nn.Module, arg: str) -> bool:
    try:
        return arg in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def _left_pad(cache: tuple, n: int) -> tuple:
    """Add n zero slots at the start of every row of a cache (dimension 2 is time)."""
    if n == 0:
        return cache
    return tuple((torch.nn.functional.pad(k, (0, 0, n, 0)), torch.nn.functional.pad(v, (0, 0, n, 0)))
                 for k, v in cache)


class Batcher:
    """Decodes the submitted sequences of one model in a background thread, step by step."""

    def __init__(self, model: torch.nn.Module, max_batch: int = 16, max_queue: int = 64, name: str = "model"):
        self.model = model
        self.device = next(model.parameters()).device
        self.max_batch = max_batch if _accepts(model, "pad") else 1
        self._last_only = _accepts(model, "last_only")
        self.max_queue = max_queue
        self.name = name
        self._waiting: deque[Job] = deque()
        self._rows: list[_Row] = []
        self._cache: tuple | None = None
        self._pad = torch.zeros(0, dtype=torch.long)
        self._next = torch.zeros(0, dtype=torch.long)
        self._cv = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name=f"genlab-batcher-{name}", daemon=True)
        # counters read by /metrics
        self.tokens_generated = 0
        self.steps = 0
        self.last_batch_size = 0

    # -- the caller's side ------------------------------------------------------------------
    def start(self) -> "Batcher":
        self._thread.start()
        return self

    def submit(self, seqs: list[Job]) -> None:
        """Queue sequences (all or none); raises QueueFull or ShuttingDown."""
        with self._cv:
            if self._stopping:
                raise ShuttingDown(f"model {self.name} is shutting down")
            if len(self._waiting) + len(seqs) > self.max_queue:
                raise QueueFull(f"model {self.name} has {len(self._waiting)} requests waiting")
            self._waiting.extend(seqs)
            self._cv.notify()

    @property
    def queue_depth(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return len(self._rows)

    def stop(self, timeout: float = 10.0) -> None:
        """Take no more requests, let running ones finish for up to `timeout` s, then cancel the rest."""
        with self._cv:
            self._stopping = True
            self._cv.notify()
        deadline = time.monotonic() + timeout
        while self._thread.is_alive() and time.monotonic() < deadline and (self._rows or self._waiting):
            time.sleep(0.02)
        with self._cv:
            for seq in list(self._waiting) + [r.seq for r in self._rows]:
                seq.cancel()
            self._cv.notify()
        self._thread.join(timeout=5)

    # -- the thread ---------------------------------------------------------------------------
    def _loop(self) -> None:
        with torch.inference_mode():
            while True:
                with self._cv:
                    while not self._rows and not self._waiting and not self._stopping:
                        self._cv.wait()
                    if self._stopping and not self._rows and not self._waiting:
                        return
                    admit = []
                    while self._waiting and len(self._rows) + len(admit) < self.max_batch:
                        admit.append(self._waiting.popleft())
                try:
                    if admit:
                        self._admit(admit)
                    if self._rows:
                        self._step()
                except Exception as e:  # a failing model must not hang its clients
                    message = f"generation failed: {type(e).__name__}: {e}"
                    for seq in admit + [r.seq for r in self._rows]:
                        seq.emit("error", message)
                    self._rows, self._cache = [], None
                    self._pad = self._next = torch.zeros(0, dtype=torch.long)

    def _sample(self, row: _Row, logits: torch.Tensor) -> int:
        s = row.seq
        if s.repetition_penalty != 1.0:  # over the whole context, as sampling.generate does
            seen = torch.tensor([s.prompt_ids + row.tokens], device=logits.device)
            logits = penalize_repetition(logits[None], seen, s.repetition_penalty)[0]
        if s.temperature == 0:
            return int(logits.argmax(-1))
        return int(next_token(logits[None], s.temperature, s.top_k, s.top_p, row.gen)[0])

    def _admit(self, seqs: list[Job]) -> None:
        """Prefill the new prompts together (left-padded), sample their first tokens, splice them
        into the running batch."""
        rows = []
        for seq in seqs:
            if seq.cancelled:
                seq.emit("done", Finished([], "", "cancelled"))
            elif seq.max_new_tokens == 0:
                _Row(seq).finish()
            else:
                rows.append(_Row(seq))
        if not rows:
            return
        n = max(len(r.seq.prompt_ids) for r in rows)
        pad = torch.tensor([n - len(r.seq.prompt_ids) for r in rows])
        idx = torch.tensor([[0] * int(p) + r.seq.prompt_ids for p, r in zip(pad, rows)], dtype=torch.long,
                           device=self.device)
        kwargs = {"pad": pad.to(self.device)} if self.max_batch > 1 else {}
        if self._last_only:
            kwargs["last_only"] = True
        logits, cache = self.model(idx, use_cache=True, **kwargs)
        keep, first = [], []
        for i, row in enumerate(rows):
            tok = self._sample(row, logits[i, -1])
            self.tokens_generated += 1
            if row.add(tok):
                row.finish()
            else:
                keep.append(i)
                first.append(tok)
        if not keep:
            return
        if len(keep) < len(rows):  # (only a KV cache gets here: models without `pad` admit one row at a time)
            sel = torch.tensor(keep)
            cache = tuple((k[sel.to(self.device)], v[sel.to(self.device)]) for k, v in cache)
            pad = pad[sel]
        if self._cache is None:
            self._cache, self._pad = cache, pad
        else:  # left-pad whichever cache is shorter so both have the same length
            have = self._cache[0][0].shape[2]
            if n > have:
                self._cache, self._pad = _left_pad(self._cache, n - have), self._pad + (n - have)
            elif have > n:
                cache, pad = _left_pad(cache, have - n), pad + (have - n)
            self._cache = tuple((torch.cat([k0, k1]), torch.cat([v0, v1]))
                                for (k0, v0), (k1, v1) in zip(self._cache, cache))
            self._pad = torch.cat([self._pad, pad])
        self._next = torch.cat([self._next, torch.tensor(first)])
        self._rows += [rows[i] for i in keep]

    def _step(self) -> None:
        """One token for every running row."""
        idx = self._next.to(self.device)[:, None]
        kwargs = {"pad": self._pad.to(self.device)} if self.max_batch > 1 else {}
        logits, self._cache = self.model(idx, past_kv=self._cache, use_cache=True, **kwargs)
        self.steps += 1
        self.last_batch_size = len(self._rows)
        keep = []
        for i, row in enumerate(self._rows):
            if row.seq.cancelled:
                row.seq.emit("done", Finished(row.tokens, "", "cancelled"))
                continue
            tok = self._sample(row, logits[i, -1])
            self.tokens_generated += 1
            if row.add(tok):
                row.finish()
                continue
            self._next[i] = tok
            keep.append(i)
        if len(keep) < len(self._rows):
            self._rows = [self._rows[i] for i in keep]
            if not keep:
                self._cache, self._pad, self._next = None, torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
                return
            sel = torch.tensor(keep)
            self._pad, self._next = self._pad[sel], self._next[sel]
            dev_sel = sel.to(self.device)
            trim = int(self._pad.min())  # padding every row has is dropped
            self._cache = tuple((k[dev_sel, :, trim:], v[dev_sel, :, trim:]) for k, v in self._cache)
            self._pad -= trim
