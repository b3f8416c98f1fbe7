"""Text-conditional diffusion on a tiny clip run: prompts and guidance (API and CLI), guidance 0 =
unconditional, a self-contained run directory, resume, a CLIP of another image size, runs saved
before the linear text projection."""
import math
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import genlab
from genlab.cli import main
from genlab.errors import ConfigError
from genlab.metrics import feature_net

CLIP = {"n_train": 200, "image_width": 8, "text_width": 16, "text_layers": 1, "text_heads": 2, "embed_dim": 8,
        "vocab_size": 300, "max_steps": 3, "batch_size": 16, "eval_pairs": 10, "save_every": 0, "threads": 1}
TINY = {"n_train": 200, "unet_channels": [8, 16], "attention_resolutions": [8], "head_channels": 8, "groups": 4,
        "timesteps": 50, "max_steps": 6, "batch_size": 8, "warmup_steps": 2, "eval_samples": 4, "eval_steps": 2,
        "save_every": 3, "log_every": 2, "lr_schedule": "constant", "eval_prompt_samples": 1, "captions_per_image": 2, "threads": 1}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("text")
    mp.setenv("GENLAB_CACHE", str(tmp / "cache"))
    real = feature_net.get_feature_net
    mp.setattr(feature_net, "get_feature_net",
               lambda d, s, c, steps=None, robust=False: real(d, s, c, steps=20, robust=robust))
    clip = genlab.train("clip", overrides=CLIP, out=tmp / "clip", progress=False)
    diff = genlab.train("diffusion", overrides={**TINY, "text_encoder": str(clip.path)}, out=tmp / "diff",
                        progress=False)
    yield tmp, diff
    mp.undo()


def test_prompts_guidance_zero_is_unconditional(runs):
    _, run = runs
    r = run.recipe
    assert r.modules["unet"].text_emb is not None and r.modules["unet"].class_emb is None
    out = run.sample(n=2, seed=3, steps=3, prompt="a blond man with glasses", guidance=3).parts["samples"]
    assert out.labels == ["a blond man with glasses"] * 2 and "prompt" in out.title
    g0 = [run.sample(n=2, seed=3, steps=3, prompt=p, guidance=0).parts["samples"].images
          for p in ("a blond man with glasses", "a zebra-striped xylophone")]   # unseen words encode too
    assert np.array_equal(g0[0], g0[1]) and not np.array_equal(g0[0], out.images)
    # guidance 0 is exactly the model with the null (zero) text embedding
    opts = r.Sample(n=2, seed=3, steps=3, guidance=1.0)
    null, _ = r.sample_images(opts, torch.zeros(2, r.text.dim))
    opts0 = r.Sample(n=2, seed=3, steps=3, guidance=0.0)
    zero, _ = r.sample_images(opts0, r.embed(["a smiling face"] * 2))
    torch.testing.assert_close(null, zero)
    default = run.sample(n=8, seed=1, steps=2).parts["samples"].labels
    assert len(set(default)) == 8                         # a phrasing of each attribute combination
    with pytest.raises(ConfigError):
        run.sample(n=2, label="glasses")


def test_cli_sample_with_prompt_and_guidance(runs, tmp_path):
    """The issue's command line: `genlab sample RUN --set prompt=... --set guidance=3`."""
    _, run = runs

    def sample(out: str, *settings: str) -> int:
        args = ["sample", str(run.path), "--n", "2", "--set", "steps=2", "--set", "strip=0", "--out", str(tmp_path / out)]
        return main([*args, *(a for s in settings for a in ("--set", s))])

    assert sample("a", "prompt=a blond man with glasses", "guidance=3") == 0
    assert sample("b", "prompt=a blond man with glasses", "guidance=0") == 0
    a, b = (sorted((tmp_path / d).glob("*.png")) for d in "ab")
    assert a and [p.name for p in a] == [p.name for p in b]
    assert any(pa.read_bytes() != pb.read_bytes() for pa, pb in zip(a, b))   # guidance reached the sampler
    assert sample("c", "guidance_scale=3") == 1                  # one name, no hidden second one


def test_evaluate_reports_prompt_following_and_clip_score(runs):
    _, run = runs
    m = run.evaluate()
    assert {"follow_glasses", "follow_blond", "follow_smiling", "follow_all", "face_rate", "clip_score", "fid"} <= set(m)
    assert 0 <= m["follow_all"] <= min(m["follow_glasses"], m["follow_blond"], m["follow_smiling"])


def test_self_contained_and_resume(runs):
    tmp, full = runs
    clip_copy = tmp / "clip_copy"
    shutil.copytree(tmp / "clip", clip_copy)
    half = tmp / "half"
    genlab.train("diffusion", overrides={**TINY, "max_steps": 3, "text_encoder": str(clip_copy)}, out=half,
                 progress=False)
    shutil.rmtree(clip_copy)                              # the run carries its own CLIP and tokenizer
    genlab.train("diffusion", overrides={"max_steps": 6}, out=half, resume=True, progress=False)
    a, b = load_file(str(tmp / "diff" / "model.safetensors")), load_file(str(half / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    loaded = genlab.load(half, device="cpu")
    assert loaded.sample(n=1, steps=2, prompt="a smiling face").parts["samples"].images.shape == (1, 16, 16, 3)
    with pytest.raises(ConfigError):
        genlab.load(tmp / "diff", device="cpu").recipe.labels_for(loaded.recipe.Sample(prompt="x", label="1"), 1)


def test_served_prompt_reaches_a_text_model(runs):
    from genlab.serve.models import ServedModel

    _, run = runs
    m = ServedModel("faces-text", run)
    options = m.sample_options_for_prompt(" a smiling face with glasses ")
    assert options == {"prompt": "a smiling face with glasses"}
    out = m.sample(**options, n=2, steps=2)
    images = next(p for p in out.parts.values() if p.kind == "images")
    assert images.labels == ["a smiling face with glasses"] * 2      # revised_prompt of the API


def test_clip_of_another_image_size(runs):
    """The CLIP only conditions (text side) and scores (image side, samples resized to its size):
    a 32 px CLIP serves a 16 px U-Net; a CLIP of other colour channels is refused."""
    tmp, _ = runs
    clip32 = genlab.train("clip", overrides={**CLIP, "image_size": 32}, out=tmp / "clip32", progress=False)
    over = {**TINY, "max_steps": 2, "save_every": 0, "text_encoder": str(clip32.path)}
    run = genlab.train("diffusion", overrides=over, out=tmp / "diff32", progress=False)
    images, _ = run.recipe.sample_images(run.recipe.Sample(n=2, steps=2, prompt="a smiling face", strip=0))
    assert images.shape == (2, 3, 16, 16)
    assert math.isfinite(run.recipe.text.score(images, ["a smiling face"] * 2))
    with pytest.raises(ConfigError):
        genlab.train("diffusion", overrides={**over, "channels": 1}, out=tmp / "grey", progress=False)


def test_runs_saved_before_the_linear_projection_still_load_and_sample_the_same(runs):
    """A text run saved before `text_projection` existed (its config lacks the key) had the MLP:
    it loads as one (saved_defaults) and samples exactly as before; new runs get the linear map."""
    tmp, new = runs
    assert new.recipe.config.text_projection == "linear"
    over = {**TINY, "max_steps": 2, "save_every": 0, "eval_samples": 4, "text_projection": "mlp",
            "text_encoder": str(tmp / "clip")}
    old = genlab.train("diffusion", overrides=over, out=tmp / "old", progress=False)
    before = old.sample(n=2, seed=5, steps=2, prompt="a smiling face").parts["samples"].images
    config = old.path / "config.toml"
    config.write_text("".join(line for line in config.read_text().splitlines(keepends=True)
                              if not line.startswith("text_projection")))
    loaded = genlab.load(old.path, device="cpu")
    assert loaded.recipe.config.text_projection == "mlp"
    after = loaded.sample(n=2, seed=5, steps=2, prompt="a smiling face").parts["samples"].images
    assert np.array_equal(before, after)
