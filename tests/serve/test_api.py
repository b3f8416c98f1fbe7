"""The HTTP API with the real openai and langchain-openai clients, errors, auth, health and metrics."""
from __future__ import annotations

import base64
import io
import json

import httpx
import numpy as np
import pytest
from PIL import Image

from genlab.sampling import SamplingOptions, complete

openai = pytest.importorskip("openai")


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=60)


def _reference(run, prompt: str, max_tokens: int, seed: int, n: int = 1, **kw):
    """What `genlab sample` / Run.sample gives for the same options (sampling.complete)."""
    return complete(run.recipe.lm_parts(), SamplingOptions(prompt=prompt, max_new_tokens=max_tokens, **kw),
                    n=n, seed=seed)


def test_models_lists_runs(client):
    ids = {m.id: m for m in client.models.list().data}
    assert set(ids) == {"tiny", "faces"}
    assert ids["tiny"].model_extra["genlab"]["kind"] == "text"
    assert ids["faces"].model_extra["genlab"]["labels"] == ["no glasses", "glasses"]


def test_completion_with_seed_equals_in_process_sampling(client, text_run):
    r = client.completions.create(model="tiny", prompt="the cat", max_tokens=20, seed=3, temperature=0.9,
                                  top_p=0.95)
    ref = _reference(text_run, "the cat", 20, 3, temperature=0.9, top_p=0.95)
    assert r.choices[0].text == ref.completions[0]
    assert r.usage.prompt_tokens == ref.prompt_tokens == 7
    assert r.usage.completion_tokens == ref.completion_tokens[0] == 20
    assert r.choices[0].finish_reason == "length"


def test_empty_prompt_starts_where_genlab_sample_starts(client, text_run):
    r = client.completions.create(model="tiny", prompt="", max_tokens=15, seed=8, temperature=1.0)
    assert r.choices[0].text == text_run.sample(prompt="", max_new_tokens=15, n=1, seed=8,
                                                temperature=1.0).completions[0]


def test_n_choices_and_stop(client, text_run):
    r = client.completions.create(model="tiny", prompt="the ", max_tokens=30, n=3, seed=10, stop=[" "])
    ref = _reference(text_run, "the ", 30, 10, n=3, stop=[" "], temperature=1.0)
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert [c.text for c in r.choices] == ref.completions  # choice j is seeded seed + j, as row j
    assert all(" " not in c.text for c in r.choices)
    assert [c.finish_reason for c in r.choices] == [{"eos": "stop", "stop": "stop"}.get(f, f)
                                                    for f in ref.finish_reasons]
    assert r.usage.completion_tokens == sum(ref.completion_tokens)


def test_streaming_completion_adds_up_to_the_whole(client):
    whole = client.completions.create(model="tiny", prompt="a dog", max_tokens=40, seed=1).choices[0].text
    pieces, reasons = [], []
    for chunk in client.completions.create(model="tiny", prompt="a dog", max_tokens=40, seed=1, stream=True):
        pieces.append(chunk.choices[0].text)
        reasons.append(chunk.choices[0].finish_reason)
    assert "".join(pieces) == whole and len(pieces) > 2
    assert reasons[-1] == "length" and set(reasons[:-1]) == {None}


def test_chat_and_chat_streaming(client):
    msgs = [{"role": "system", "content": "You write about animals."}, {"role": "user", "content": "the cat"}]
    r = client.chat.completions.create(model="tiny", messages=msgs, max_tokens=30, seed=4)
    text = r.choices[0].message.content
    assert r.choices[0].message.role == "assistant" and "\nUser:" not in text
    assert r.usage.prompt_tokens == len("You write about animals.\n\nUser: the cat\nAssistant:")
    chunks = list(client.chat.completions.create(model="tiny", messages=msgs, max_tokens=30, seed=4, stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed.strip() == text
    assert chunks[-1].usage.completion_tokens == r.usage.completion_tokens


def test_raw_stream_ends_with_done(server):
    with httpx.stream("POST", server.url + "/v1/completions", json={"model": "tiny", "prompt": "the", "max_tokens": 5,
                                                                    "stream": True}, timeout=30) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [x for x in r.iter_lines() if x]
    assert lines[-1] == "data: [DONE]" and all(x.startswith("data: ") for x in lines)


def test_images_pick_the_class_from_the_prompt(client):
    r = client.images.generate(model="faces", prompt="glasses", n=2, response_format="b64_json")
    imgs = [np.asarray(Image.open(io.BytesIO(base64.b64decode(d.b64_json)))) for d in r.data]
    assert len(imgs) == 2 and imgs[0].shape == (8, 8, 3)
    dark = client.images.generate(model="faces", prompt="no glasses", n=1)
    assert imgs[0].mean() > np.asarray(Image.open(io.BytesIO(base64.b64decode(dark.data[0].b64_json)))).mean() + 50
    with pytest.raises(openai.BadRequestError, match="draws one of: no glasses, glasses"):
        client.images.generate(model="faces", prompt="a hat")
    with pytest.raises(openai.BadRequestError, match="text model"):
        client.images.generate(model="tiny", prompt="glasses")


def test_genlab_endpoint_returns_the_typed_output(server):
    r = httpx.post(server.url + "/genlab/v1/sample", json={"model": "faces", "options": {"n": 3, "mode": "label",
                                                                                       "label": 0}})
    assert r.status_code == 200
    out = r.json()["output"]
    assert out["kind"] == "images" and out["shape"] == [3, 8, 8, 3] and out["labels"] == ["no glasses"] * 3
    texts = httpx.post(server.url + "/genlab/v1/sample",
                       json={"model": "tiny", "options": {"n": 2, "prompt": "a dog", "max_new_tokens": 10}}).json()
    assert texts["output"]["kind"] == "texts" and all(t.startswith("a dog") for t in texts["output"]["texts"])
    bad = httpx.post(server.url + "/genlab/v1/sample", json={"model": "faces", "options": {"mode": "grid"}})
    assert bad.status_code == 400 and "one label at a time" in bad.json()["error"]["message"]


def test_langchain_chat_openai(server):
    lc = pytest.importorskip("langchain_openai")
    llm = lc.ChatOpenAI(base_url=server.url + "/v1", api_key="unused", model="tiny", max_tokens=20, temperature=0.5,
                        seed=2, max_retries=0)
    reply = llm.invoke("the cat")
    assert isinstance(reply.content, str) and reply.response_metadata["token_usage"]["completion_tokens"] > 0
    streamed = "".join(c.content for c in llm.stream("the cat"))
    assert streamed.strip() == reply.content


BAD = [  # (body, status, param)
    ({"model": "nope", "prompt": "x"}, 404, "model"),
    ({"prompt": "x"}, 400, "model"),
    ({"model": "tiny"}, 400, "prompt"),
    ({"model": "tiny", "prompt": 5}, 400, "prompt"),
    ({"model": "tiny", "prompt": "x", "temperature": "hot"}, 400, "temperature"),
    ({"model": "tiny", "prompt": "x", "temperature": 3}, 400, "temperature"),
    ({"model": "tiny", "prompt": "x", "top_p": 0}, 400, "top_p"),
    ({"model": "tiny", "prompt": "x", "max_tokens": 0}, 400, "max_tokens"),
    ({"model": "tiny", "prompt": "x", "max_tokens": True}, 400, "max_tokens"),
    ({"model": "tiny", "prompt": "x", "max_tokens": 10**6}, 400, "max_tokens"),
    ({"model": "tiny", "prompt": "x", "max_tokens": 96}, 400, "max_tokens"),   # context is 96 tokens
    ({"model": "tiny", "prompt": "x" * 200, "max_tokens": 5}, 400, "prompt"),
    ({"model": "tiny", "prompt": "x", "n": 100}, 400, "n"),
    ({"model": "tiny", "prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, 400, "stop"),
    ({"model": "faces", "prompt": "x"}, 400, "model"),
    ({"model": "tiny", "prompt": "x", "logprobs": 2}, 400, "logprobs"),
    ({"model": "tiny", "prompt": "x", "repetition_penalty": 0}, 400, "repetition_penalty"),
    ({"model": "tiny", "prompt": "x", "presence_penalty": 0.5}, 400, "presence_penalty"),
]


@pytest.mark.parametrize("body,status,param", BAD)
def test_bad_completion_requests_get_openai_errors(server, body, status, param):
    r = httpx.post(server.url + "/v1/completions", json=body, timeout=30)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    assert err["param"] == param


@pytest.mark.parametrize("path,content", [
    ("/v1/completions", b"{not json"), ("/v1/chat/completions", b'{"model": "tiny", "messages": []}'),
    ("/v1/chat/completions", b'{"model": "tiny", "messages": [{"role": "robot", "content": "hi"}]}'),
    ("/v1/images/generations", b'{"model": "faces", "prompt": "glasses", "n": 50}'),
    ("/v1/images/generations", b'{"model": "faces", "prompt": "glasses", "response_format": "url"}'),
    ("/v1/nothing", b"{}"), ("/genlab/v1/sample", b'{"model": "faces", "options": {"n": "many"}}'),
])
def test_other_bad_requests_are_4xx_with_a_message(server, path, content):
    r = httpx.post(server.url + path, content=content, headers={"content-type": "application/json"}, timeout=30)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"]["message"]


def test_auth(start_server, text_run):
    s = start_server({"tiny": text_run}, api_key="sekret")
    bad = openai.OpenAI(base_url=s.url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    assert httpx.get(s.url + "/v1/models").status_code == 401
    good = openai.OpenAI(base_url=s.url + "/v1", api_key="sekret", max_retries=0)
    assert good.completions.create(model="tiny", prompt="the", max_tokens=3).choices[0].text is not None
    assert httpx.get(s.url + "/health").status_code == 200  # liveness needs no key


def test_health_and_metrics(server, client):
    client.completions.create(model="tiny", prompt="the", max_tokens=4)
    assert httpx.get(server.url + "/health").json()["status"] == "ok"
    text = httpx.get(server.url + "/metrics").text
    assert 'genlab_requests_total{path="/v1/completions",status="200"}' in text
    assert 'genlab_queue_depth{model="tiny"} 0' in text
    done = [line for line in text.splitlines() if line.startswith('genlab_completion_tokens_total{model="tiny"}')]
    assert done and int(done[0].split()[-1]) >= 4
    assert "genlab_request_seconds_bucket" in text


def test_full_queue_answers_429_with_retry_after(start_server, text_run):
    import asyncio
    import time

    s = start_server({"tiny": text_run}, max_batch=1, max_queue=1)
    batcher = s.app.state.models["tiny"].batcher
    model = batcher.model

    def slow_model(*args, **kwargs):  # 80 tokens take >= 0.8 s: the burst arrives while one runs
        time.sleep(0.01)
        return model(*args, **kwargs)

    batcher.model = slow_model

    async def burst():
        async with httpx.AsyncClient(timeout=60) as c:
            return await asyncio.gather(*(c.post(s.url + "/v1/completions",
                                                 json={"model": "tiny", "prompt": "the", "max_tokens": 80})
                                          for _ in range(8)))

    rs = asyncio.run(burst())
    codes = sorted(r.status_code for r in rs)
    assert set(codes) == {200, 429}  # served (running or the one queued) or turned away, nothing else
    busy = next(r for r in rs if r.status_code == 429)
    assert busy.headers["retry-after"] == "1" and busy.json()["error"]["type"] == "rate_limit_error"


def test_client_disconnect_cancels_generation(start_server, text_run):
    import time

    s = start_server({"tiny": text_run}, max_batch=4)
    batcher = s.app.state.models["tiny"].batcher
    model = batcher.model

    def slow_model(*args, **kwargs):  # 20 ms a step: 90 tokens take 1.8 s, the disconnect comes first
        time.sleep(0.02)
        return model(*args, **kwargs)

    batcher.model = slow_model
    with httpx.stream("POST", s.url + "/v1/completions", json={"model": "tiny", "prompt": "the", "max_tokens": 90,
                                                                  "stream": True, "temperature": 1.0}, timeout=30) as r:
        next(r.iter_lines())
    deadline = time.monotonic() + 10
    while batcher.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert batcher.running == 0
    assert batcher.tokens_generated < 90  # it stopped early


def test_timeout_is_reported(start_server, text_run):
    s = start_server({"tiny": text_run}, request_timeout=0.001)
    r = httpx.post(s.url + "/v1/completions", json={"model": "tiny", "prompt": "the", "max_tokens": 90}, timeout=30)
    assert r.status_code == 504 and r.json()["error"]["code"] == "timeout"
