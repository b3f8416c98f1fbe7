"""Decoding layouts through every door: genlab.load, `genlab sample/eval --weights`, the server's loader."""
from __future__ import annotations

import genlab
from genlab.cli import main
from genlab.sampling.weights import Float16Linear, Float32Linear
from genlab.serve import load_models


def test_load_sample_eval_and_serve_take_float16_weights(text_run_dir, tmp_path, capsys):
    plain = genlab.load(text_run_dir)
    half = genlab.load(text_run_dir, weights="float16")
    assert isinstance(plain.recipe.modules["model"].h[0].attn.c_proj, Float32Linear)
    assert isinstance(half.recipe.modules["model"].lm_head, Float16Linear)
    opts = dict(prompt="the cat", max_new_tokens=30, temperature=0, n=1)
    assert half.sample(**opts).texts == plain.sample(**opts).texts  # greedy: the same text
    served = load_models([f"mini={text_run_dir}"], weights="float16")["mini"]
    assert isinstance(served.parts.model.h[0].mlp.c_fc, Float16Linear)

    assert main(["sample", str(text_run_dir), "--weights", "float16", "--out", str(tmp_path / "s"),
                 "--set", "max_new_tokens=10", "n=1"]) == 0
    assert main(["eval", str(text_run_dir), "--weights", "float16", "--json"]) == 0
    assert main(["sample", str(text_run_dir), "--weights", "int3"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["genlab: error: weights must be one of float32, float16, got 'int3'"]
