"""Real image recipes behind /v1/images/generations: a conditional cgan (the prompt picks the class)
and an unconditional dcgan (a prompt is rejected). Run directories are written untrained with the
run-directory API (training with its final FID evaluation would cost minutes; the server only
needs a loadable run)."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

import genlab

openai = pytest.importorskip("openai")

TINY = {"device": "cpu", "image_size": 16, "latent_dim": 8, "g_width": 8, "d_width": 8, "threads": 1}


def _untrained_run(recipe: str, path):
    from genlab.api import build_config
    from genlab.engine.config import config_dict
    from genlab.engine.rundir import RunDir
    from genlab.recipes import get_recipe

    cls = get_recipe(recipe)
    cfg = build_config(cls, overrides=TINY)
    r = cls(cfg, "cpu", run_dir=path)
    r.setup(training=True)
    run = RunDir(path)
    path.mkdir(parents=True)
    run.write_config(cls.name, config_dict(cfg))
    r.save_artifacts(path)
    run.save_weights(r.modules, step=0)
    return genlab.load(path)


@pytest.fixture(scope="module")
def image_server(start_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("image-runs")
    return start_server({"faces": _untrained_run("cgan", root / "faces"),
                         "dcgan": _untrained_run("dcgan", root / "dcgan")})


def _pngs(response):
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(d.b64_json)))) for d in response.data]


def test_cgan_draws_the_class_the_prompt_names(image_server):
    client = openai.OpenAI(base_url=image_server.url + "/v1", api_key="unused", max_retries=0, timeout=120)
    models = {m.id: m.model_extra["genlab"] for m in client.models.list().data}
    assert models["faces"]["labels"] == ["no glasses", "glasses"] and models["dcgan"]["labels"] == []
    r = client.images.generate(model="faces", prompt="Glasses", n=3, response_format="b64_json", extra_body={"seed": 4})
    imgs = _pngs(r)
    assert len(imgs) == 3 and imgs[0].shape[:2] == (16, 16)
    # the same as sampling the run in-process with label 1 and the same seed
    ref = image_server.app.state.models["faces"].run.sample(n=3, mode="label", label=1, seed=4)
    assert np.array_equal(np.stack(imgs).reshape(ref.images.shape), ref.images)
    with pytest.raises(openai.BadRequestError, match="draws one of: no glasses, glasses"):
        client.images.generate(model="faces", prompt="a hat")


def test_dcgan_is_unconditional(image_server):
    client = openai.OpenAI(base_url=image_server.url + "/v1", api_key="unused", max_retries=0, timeout=120)
    assert len(_pngs(client.images.generate(model="dcgan", prompt="", n=2))) == 2
    with pytest.raises(openai.BadRequestError, match="unconditional"):
        client.images.generate(model="dcgan", prompt="glasses")
