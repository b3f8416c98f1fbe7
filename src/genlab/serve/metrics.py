"""Counters for GET /metrics, written in Prometheus' text exposition format by hand (no dependency)."""
from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _Histogram:
    def __init__(self) -> None:
        self.counts = [0] * len(BUCKETS)
        self.total, self.n = 0.0, 0

    def observe(self, value: float) -> None:
        for i, b in enumerate(BUCKETS):
            if value <= b:
                self.counts[i] += 1
        self.total += value
        self.n += 1

    def lines(self, name: str, labels: str) -> list[str]:
        sep = "," if labels else ""
        out = [f'{name}_bucket{{{labels}{sep}le="{b}"}} {c}' for b, c in zip(BUCKETS, self.counts)]
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.n}')
        out += [f"{name}_sum{{{labels}}} {self.total:.6f}", f"{name}_count{{{labels}}} {self.n}"]
        return out


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.latency: dict[str, _Histogram] = defaultdict(_Histogram)
        self.ttft: dict[str, _Histogram] = defaultdict(_Histogram)
        self.prompt_tokens: dict[str, int] = defaultdict(int)
        self.completion_tokens: dict[str, int] = defaultdict(int)
        self.image_count: dict[str, int] = defaultdict(int)
        self.queued: dict[str, int] = defaultdict(int)

    def request(self, path: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(path, status)] += 1
            self.latency[path].observe(seconds)

    def tokens(self, model: str, prompt: int, completion: int) -> None:
        with self._lock:
            self.prompt_tokens[model] += prompt
            self.completion_tokens[model] += completion

    def first_token(self, model: str, seconds: float) -> None:
        with self._lock:
            self.ttft[model].observe(seconds)

    def images(self, model: str, n: int) -> None:
        with self._lock:
            self.image_count[model] += n

    def queue_event(self, model: str) -> None:
        with self._lock:
            self.queued[model] += 1

    def render(self, models: dict[str, Any]) -> str:
        with self._lock:
            out = ["# HELP genlab_requests_total HTTP requests by path and status.",
                   "# TYPE genlab_requests_total counter"]
            out += [f'genlab_requests_total{{path="{p}",status="{s}"}} {n}' for (p, s), n in sorted(self.requests.items())]
            out += ["# HELP genlab_request_seconds Whole-request latency (a stream counts until its headers).",
                    "# TYPE genlab_request_seconds histogram"]
            for p, h in sorted(self.latency.items()):
                out += h.lines("genlab_request_seconds", f'path="{p}"')
            out += ["# HELP genlab_time_to_first_token_seconds Streaming: submit to first text piece.",
                    "# TYPE genlab_time_to_first_token_seconds histogram"]
            for m, h in sorted(self.ttft.items()):
                out += h.lines("genlab_time_to_first_token_seconds", f'model="{m}"')
            for name, help_, table in (("genlab_prompt_tokens_total", "Prompt tokens read.", self.prompt_tokens),
                                       ("genlab_completion_tokens_total", "Tokens generated.", self.completion_tokens),
                                       ("genlab_images_total", "Images generated.", self.image_count),
                                       ("genlab_text_requests_total", "Text requests queued.", self.queued)):
                out += [f"# HELP {name} {help_}", f"# TYPE {name} counter"]
                out += [f'{name}{{model="{m}"}} {n}' for m, n in sorted(table.items())]
        batchers = {n: m.batcher for n, m in models.items() if m.batcher is not None}
        for name, help_, attr in (("genlab_queue_depth", "Sequences waiting to join the batch.", "queue_depth"),
                                  ("genlab_running_sequences", "Sequences being decoded.", "running"),
                                  ("genlab_decode_steps_total", "Batched decoding steps.", "steps"),
                                  ("genlab_batcher_tokens_total", "Tokens sampled by the batcher.",
                                   "tokens_generated")):
            kind = "counter" if name.endswith("_total") else "gauge"
            out += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
            out += [f'{name}{{model="{n}"}} {getattr(b, attr)}' for n, b in batchers.items()]
        return "\n".join(out) + "\n"
