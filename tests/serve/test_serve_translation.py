"""A translation run behind the OpenAI-compatible API: /v1/completions and /v1/chat/completions
return the translation of the prompt (beam search, `beam` to choose; a stream is greedy), the same
as translating in-process; what does not apply to deterministic decoding is refused."""
from __future__ import annotations

import httpx
import pytest

import genlab
from genlab.data.parallel import scene_pairs

openai = pytest.importorskip("openai")

TINY = {"d_model": 32, "n_head": 2, "n_enc": 1, "n_dec": 1, "d_ff": 64, "vocab_size": 300, "max_tokens": 600,
        "max_len": 24, "eval_sentences": 10, "log_every": 10, "device": "cpu", "warmup_steps": 5, "lr": 3e-3,
        "max_steps": 40, "eval_every": 40, "save_every": 40, "threads": 1}
SENTENCES = ["A man is walking in the park.", "", "Two women are singing."]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pairs")
    pairs = scene_pairs(500, seed=3)
    for split, rows in (("train", pairs[:460]), ("val", pairs[460:])):
        (folder / f"{split}.en").write_text("".join(e + "\n" for e, _ in rows), encoding="utf-8")
        (folder / f"{split}.fr").write_text("".join(f + "\n" for _, f in rows), encoding="utf-8")
    genlab.train("translation", data=folder, overrides=TINY, out=folder / "run", progress=False)
    return genlab.load(folder / "run")


@pytest.fixture(scope="module")
def url(start_server, run):
    return start_server({"fr": run}).url


@pytest.fixture
def client(url):
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=60)


def test_completions_translate_each_prompt_as_in_process(client, run):
    assert {m.id: m.model_extra["genlab"]["kind"] for m in client.models.list().data} == {"fr": "text-to-text"}
    beam = run.sample(text=SENTENCES).translations          # the sampling default: beam 4
    greedy = run.sample(text=SENTENCES, beam=1).translations
    assert beam[0] and beam[1] == "" and beam[2]            # a trained model says something; empty stays empty
    r = client.completions.create(model="fr", prompt=SENTENCES)
    assert [c.text for c in r.choices] == beam and {c.finish_reason for c in r.choices} == {"stop"}
    r = client.completions.create(model="fr", prompt=SENTENCES[0], extra_body={"beam": 1})
    assert r.choices[0].text == greedy[0]


def test_chat_translates_the_last_user_message(client, run):
    messages = [{"role": "system", "content": "Translate into French."},
                {"role": "user", "content": "A dog is running."}, {"role": "assistant", "content": "Un chien court."},
                {"role": "user", "content": SENTENCES[2]}]
    r = client.chat.completions.create(model="fr", messages=messages)
    assert r.choices[0].message.content == run.sample(text=SENTENCES[2]).translations[0]


def test_streams_are_the_greedy_translation(client, url, run):
    greedy = run.sample(text=SENTENCES[0], beam=1).translations[0]
    pieces = [c.choices[0].text for c in client.completions.create(model="fr", prompt=SENTENCES[0], stream=True)]
    assert len(pieces) > 2 and "".join(pieces) == greedy      # piece by piece, adding up to the whole
    chunks = list(client.chat.completions.create(model="fr", stream=True,
                                                 messages=[{"role": "user", "content": SENTENCES[0]}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == greedy
    assert chunks[-1].choices[0].finish_reason == "stop"
    with httpx.stream("POST", url + "/v1/completions", json={"model": "fr", "prompt": "A cat.", "stream": True},
                      timeout=30) as r:
        lines = [x for x in r.iter_lines() if x]
    assert lines[-1] == "data: [DONE]"


@pytest.mark.parametrize("body,needle", [
    ({"temperature": 0.5}, "temperature does not apply to model 'fr'"),
    ({"n": 2}, "n must be 1"),
    ({"stop": ["."]}, "stop does not apply"),
    ({"beam": 0}, "beam must be a whole number from 1 to 64"),
    ({"stream": True, "beam": 4}, "stream: true decodes greedily"),
    ({"prompt": "a man " * 40}, "split it into shorter sentences"),
    ({"prompt": ["A cat.", "A dog."], "stream": True}, "stream: true takes one prompt"),
])
def test_what_does_not_apply_is_a_400(url, body, needle):
    r = httpx.post(url + "/v1/completions", json={"model": "fr", "prompt": "A cat.", **body}, timeout=30)
    assert r.status_code == 400 and needle in r.json()["error"]["message"], r.text


def test_chat_needs_a_user_message_and_images_are_refused(url):
    r = httpx.post(url + "/v1/chat/completions", json={"model": "fr", "messages": [{"role": "system", "content": "x"}]})
    assert r.status_code == 400 and "last user message" in r.json()["error"]["message"]
    r = httpx.post(url + "/v1/images/generations", json={"model": "fr", "prompt": "A cat."}, timeout=30)
    assert r.status_code == 400
