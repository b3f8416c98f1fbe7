"""genlab serve under concurrent streaming clients: batching on vs off, and HTTP overhead.

    .venv/bin/python benchmarks/serve_batching.py [--models gpt2-small,book] [--clients 1,2,4,8,16]

For each model shape, a server process (genlab.serve.create_app under uvicorn on 127.0.0.1) is
started twice, with batching (max_batch=16) and without (max_batch=1: one request at a time).
C clients (C = 1, 2, 4, 8, 16) each stream `--requests` completions of `--tokens` tokens, all
at once; we report aggregate generated tokens/s (all tokens / wall time), p50/p99 time to first
token, p50/p99 inter-token latency (gaps between a stream's chunks), and the server process's
CPU time per generated token: on a shared machine wall-clock rates depend on what else runs,
CPU time per token much less so.

Server overhead: one client's tokens/s through HTTP streaming against `sampling.generate` on
the same model in this process (what `Run.sample` runs for a GPT), same tokens, same threads.

Weights are random (decoding cost does not depend on their values) and the tokenizer maps id
i to a short word, so no data, training or download is needed. Shapes:
    gpt2-small  12 layers, 12 heads, 768 dims, vocab 50257, context 1024 (124M parameters)
    book        3 layers, 4 heads, 256 dims, vocab 10000, context 128 (the `book` preset)
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SHAPES = {
    "gpt2-small": dict(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768),
    "book": dict(vocab_size=10000, block_size=128, n_layer=3, n_head=4, n_embd=256),
}
PROMPT = "the old man looked at the sea and"


class IdTokenizer:
    """Word i <-> id i (words are 'w<i>'); enough to encode a prompt and decode samples."""

    kind = "ids"

    def __init__(self, vocab_size: int):
        self.vocab_size, self.eos_id = vocab_size, None

    def encode(self, text: str) -> list[int]:
        return [hash(w) % self.vocab_size for w in text.split()]

    def decode(self, ids) -> str:
        return "".join(f" w{i}" for i in ids)


def build_run(shape: str):
    import torch

    from genlab.models.gpt import GPT, GPTConfig
    from genlab.sampling import LMParts

    torch.manual_seed(0)
    model = GPT(GPTConfig(**SHAPES[shape], activation="gelu")).eval()
    tok = IdTokenizer(model.config.vocab_size)

    class Recipe:
        name = f"gpt ({shape}, random weights)"

        def lm_parts(self):
            return LMParts(model, tok, None, model.config.block_size)

    class StandInRun:
        recipe, path = Recipe(), Path(".")

    return StandInRun()


def serve(shape: str, port: int, max_batch: int, threads: int) -> None:
    import torch
    import uvicorn

    from genlab.serve.app import Limits, create_app
    from genlab.serve.models import ServedModel

    torch.set_num_threads(threads)
    limits = Limits(max_batch=max_batch, max_queue=256)
    app = create_app({"m": ServedModel("m", build_run(shape), max_batch, 256)}, limits=limits)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def stream_one(client, url: str, tokens: int, seed: int) -> dict:
    start = time.monotonic()
    stamps, n = [], 0
    async with client.stream("POST", url + "/v1/completions",
                             json={"model": "m", "prompt": PROMPT, "max_tokens": tokens, "seed": seed,
                                   "stream": True}) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {await r.aread()}")
        async for line in r.aiter_lines():
            if line.startswith("data: {"):
                choice = json.loads(line[6:])["choices"][0]
                if choice["text"]:
                    stamps.append(time.monotonic())
                    n += 1
    return {"ttft": stamps[0] - start, "gaps": list(np.diff(stamps)), "tokens": tokens, "chunks": n}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to compare work per token under load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(url: str, clients: int, requests: int, tokens: int, pid: int) -> dict:
    import httpx

    async def one_client(c, k):
        return [await stream_one(c, url, tokens, 1000 * k + j) for j in range(requests)]

    async with httpx.AsyncClient(timeout=600) as c:
        await stream_one(c, url, 4, 0)  # warm-up
        t0, cpu0 = time.monotonic(), cpu_seconds(pid)
        results = [r for rs in await asyncio.gather(*(one_client(c, k) for k in range(clients))) for r in rs]
        wall, cpu = time.monotonic() - t0, cpu_seconds(pid) - cpu0
    gaps = np.array([g for r in results for g in r["gaps"]])
    ttft = np.array([r["ttft"] for r in results])
    total = sum(r["tokens"] for r in results)
    return {"clients": clients, "tokens_per_s": total / wall, "server_cpu_ms_per_token": 1000 * cpu / total,
            "ttft_p50_ms": 1000 * np.percentile(ttft, 50), "ttft_p99_ms": 1000 * np.percentile(ttft, 99),
            "itl_p50_ms": 1000 * np.percentile(gaps, 50), "itl_p99_ms": 1000 * np.percentile(gaps, 99)}


def start_server(shape: str, max_batch: int, threads: int) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.Popen([sys.executable, __file__, "--serve", shape, "--port", str(port), "--max-batch",
                             str(max_batch), "--threads", str(threads)], env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


_PARTS: dict = {}


def in_process_tokens_per_s(shape: str, tokens: int, threads: int, repeats: int = 3) -> float:
    import torch

    from genlab.sampling.generate import generate

    torch.set_num_threads(threads)
    if shape not in _PARTS:
        _PARTS[shape] = build_run(shape).recipe.lm_parts()
    parts = _PARTS[shape]
    ids = parts.tokenizer.encode(PROMPT)
    generate(parts.model, [ids], 4, seed=0)
    best = 0.0
    for r in range(repeats):
        t0 = time.monotonic()
        generate(parts.model, [ids], tokens, seed=r, decode=parts.tokenizer.decode)
        best = max(best, tokens / (time.monotonic() - t0))
    return best


async def single_http(url: str, tokens: int, repeats: int = 3) -> float:
    import httpx

    async with httpx.AsyncClient(timeout=600) as c:
        await stream_one(c, url, 4, 0)
        best = 0.0
        for r in range(repeats):
            t0 = time.monotonic()
            await stream_one(c, url, tokens, r)
            best = max(best, tokens / (time.monotonic() - t0))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="book,gpt2-small")
    ap.add_argument("--clients", default="1,2,4,8,16")
    ap.add_argument("--requests", type=int, default=2, help="requests per client")
    ap.add_argument("--tokens", type=int, default=48, help="max_tokens per request")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the server (1: best on a busy machine)")
    ap.add_argument("--out", default="benchmarks/results/serve_batching.json")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--max-batch", type=int, default=16, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve(args.serve, args.port, args.max_batch, args.threads)

    clients = [int(c) for c in args.clients.split(",")]
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_start": os.getloadavg()[0],
              "args": vars(args), "results": {}}
    for shape in args.models.split(","):
        report["results"][shape] = {}
        for label, max_batch in (("batching", 16), ("off", 1)):
            proc, url = start_server(shape, max_batch, args.threads)
            try:
                rows = [asyncio.run(load(url, c, args.requests, args.tokens, proc.pid)) for c in clients]
                if label == "batching":  # overhead: alternate HTTP and in-process runs, best of each
                    http, inproc = 0.0, 0.0
                    for _ in range(3):
                        http = max(http, asyncio.run(single_http(url, args.tokens, repeats=1)))
                        inproc = max(inproc, in_process_tokens_per_s(shape, args.tokens, args.threads, repeats=1))
                    report["results"][shape]["http_single_tokens_per_s"] = http
                    report["results"][shape]["in_process_tokens_per_s"] = inproc
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            report["results"][shape][label] = rows
            for r in rows:
                print(f"{shape:>10} {label:>8} clients={r['clients']:>2}  {r['tokens_per_s']:7.1f} tok/s  "
                      f"TTFT p50/p99 {r['ttft_p50_ms']:7.0f}/{r['ttft_p99_ms']:7.0f} ms  "
                      f"ITL p50/p99 {r['itl_p50_ms']:6.1f}/{r['itl_p99_ms']:6.1f} ms  "
                      f"server CPU {r['server_cpu_ms_per_token']:5.1f} ms/token", flush=True)
        http, inproc = (report["results"][shape][k] for k in ("http_single_tokens_per_s", "in_process_tokens_per_s"))
        print(f"{shape:>10} one client: HTTP streaming {http:.1f} tok/s vs in-process generate {inproc:.1f} tok/s "
              f"({100 * http / inproc:.0f}%)", flush=True)
    report["load_end"] = os.getloadavg()[0]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1, default=float))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
