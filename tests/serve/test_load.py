"""A bounded load test: N streaming clients x M requests against one server, nothing lost."""
from __future__ import annotations

import asyncio
import json
import time

import httpx
import numpy as np

CLIENTS, REQUESTS, MAX_TOKENS = 8, 4, 24


def test_concurrent_streaming_clients_lose_nothing(server, record_property):
    async def client(c: httpx.AsyncClient, k: int) -> list[tuple[float, int, str]]:
        out = []
        for j in range(REQUESTS):
            start = time.monotonic()
            text, reason, first = "", None, None
            async with c.stream("POST", server.url + "/v1/completions",
                                json={"model": "tiny", "prompt": "the " * (1 + (k + j) % 5), "max_tokens": MAX_TOKENS,
                                      "seed": 100 * k + j, "stream": True}) as r:
                assert r.status_code == 200
                async for line in r.aiter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    choice = json.loads(line[6:])["choices"][0]
                    first = first or time.monotonic()
                    text += choice["text"]
                    reason = choice["finish_reason"] or reason
            out.append((time.monotonic() - start, first - start, reason))
        return out

    async def main():
        async with httpx.AsyncClient(timeout=120) as c:
            return await asyncio.gather(*(client(c, k) for k in range(CLIENTS)))

    t0 = time.monotonic()
    results = [r for per_client in asyncio.run(main()) for r in per_client]
    wall = time.monotonic() - t0
    assert len(results) == CLIENTS * REQUESTS
    assert all(reason == "length" for *_, reason in results)  # every request ran to its max_tokens
    latency = np.array([r[0] for r in results])
    ttft = np.array([r[1] for r in results])
    summary = {"requests": len(results), "wall_s": round(wall, 2),
               "tokens_per_s": round(len(results) * MAX_TOKENS / wall, 1),
               "latency_p50_s": round(float(np.percentile(latency, 50)), 3),
               "latency_p99_s": round(float(np.percentile(latency, 99)), 3),
               "ttft_p50_s": round(float(np.percentile(ttft, 50)), 3),
               "ttft_p99_s": round(float(np.percentile(ttft, 99)), 3)}
    for k, v in summary.items():
        record_property(k, v)
    print("\nload test:", summary)
    metrics = httpx.get(server.url + "/metrics").text
    assert 'genlab_queue_depth{model="tiny"} 0' in metrics and 'genlab_running_sequences{model="tiny"} 0' in metrics
