"""word2vec, rbm and som recipes: tiny trainings beat untrained models, resume is exact,
sampling writes its files, bad sample options are one-line errors."""
from __future__ import annotations

import os
import signal

import pytest
import torch
from safetensors.torch import load_file

import genlab
from genlab.errors import GenlabError, Interrupted
from genlab.recipes import get_recipe

W2V = {"dim": 16, "epochs": 0, "batch_size": 512, "lr": 0.1, "eval_every": 0, "save_every": 0, "eval_centres": 2000,
       "analogy_file": "", "wordsim_file": "", "simlex_file": ""}
RBM = {"epochs": 0, "hidden": 32, "batch_size": 20, "eval_every": 0, "save_every": 0, "fid_samples": 0,
       "ais_chains": 20, "ais_betas": 100, "lr": 0.05}
SOM = {"rows": 6, "cols": 6, "epochs": 0, "eval_every": 0, "save_every": 0}


def same_weights(a, b) -> None:
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def resume_equals_uninterrupted(recipe: str, tmp_path, over: dict, steps: int) -> None:
    """Ctrl-C halfway (the trainer saves and stops), then --resume: the same weights as a run
    never stopped (schedules that depend on max_steps included)."""
    over = {**over, "max_steps": steps}
    genlab.train(recipe, overrides=over, out=tmp_path / "full", progress=False)
    cls = get_recipe(recipe)
    original = cls.training_step

    def step_then_interrupt(self, batch, step):
        out = original(self, batch, step)
        if step == steps // 2:
            os.kill(os.getpid(), signal.SIGINT)
        return out

    cls.training_step = step_then_interrupt
    try:
        with pytest.raises(Interrupted):
            genlab.train(recipe, overrides=over, out=tmp_path / "cut", progress=False)
    finally:
        cls.training_step = original
    genlab.train(recipe, overrides=over, out=tmp_path / "cut", resume=True, progress=False)
    same_weights(tmp_path / "full", tmp_path / "cut")


@pytest.fixture(scope="module")
def w2v_run(tmp_path_factory):
    return genlab.train("word2vec", overrides={**W2V, "max_steps": 60}, out=tmp_path_factory.mktemp("w2v") / "r",
                        progress=False)


def test_word2vec_learns_and_explores(w2v_run, tmp_path):
    m = w2v_run.evaluate()
    assert m["val_loss"] < m["untrained_val_loss"] - 0.5
    out = genlab.load(w2v_run.path).sample(words="function,class", analogy="lists,list,tuple", n=4)
    assert [r[2] for r in out.parts["neighbours"].rows[:4]] and len(out.parts["neighbours"].rows) == 8
    assert "function" not in [r[2] for r in out.parts["neighbours"].rows[:4]]   # a word is not its own neighbour
    assert len(out.parts["analogy"].rows) == 4
    names = sorted(p.name for p in out.to_files(tmp_path / "s"))
    assert names == ["analogy.tsv", "neighbours.tsv", "projection.png", "projection.tsv", "vectors.txt"]
    lines = (tmp_path / "s" / "vectors.txt").read_text().splitlines()
    count, dim = map(int, lines[0].split())
    assert dim == 16 and count == len(lines) - 1 and len(lines[1].split()) == 17


def test_word2vec_vectors_load_in_gensim(w2v_run, tmp_path):
    gensim_models = pytest.importorskip("gensim.models")
    w2v_run.sample(out=tmp_path, words="function")
    kv = gensim_models.KeyedVectors.load_word2vec_format(str(tmp_path / "vectors.txt"))
    assert kv.vector_size == 16 and "function" in kv.key_to_index


def test_word2vec_bad_sample_options_are_errors(w2v_run):
    with pytest.raises(GenlabError, match="not in the vocabulary"):
        w2v_run.sample(words="qwzxv")
    with pytest.raises(GenlabError, match="three"):
        w2v_run.sample(analogy="a,b")


def test_word2vec_analogy_and_similarity_files(w2v_run, tmp_path):
    (tmp_path / "q.txt").write_text(": section\nlist lists tuple tuples\nclass classes object objects\n")
    (tmp_path / "p.tsv").write_text("# comment\nlist\ttuple\t8.0\nclass\tobject\t6.0\nlist\tthe\t1.0\n"
                                    "qwzxv\tlist\t3.0\n")
    run = genlab.load(w2v_run.path)
    run.config.analogy_file, run.config.wordsim_file = str(tmp_path / "q.txt"), str(tmp_path / "p.tsv")
    m = run.evaluate()
    assert m["analogy_coverage"] == 1.0 and 0 <= m["analogy_accuracy"] <= 1
    assert m["wordsim353_coverage"] == 0.75 and -1 <= m["wordsim353_spearman"] <= 1


def test_word2vec_cbow_resume_equals_uninterrupted(tmp_path):
    resume_equals_uninterrupted("word2vec", tmp_path, {**W2V, "arch": "cbow", "batch_size": 64}, 6)


@pytest.fixture(scope="module")
def rbm_run(tmp_path_factory):
    return genlab.train("rbm", overrides={**RBM, "max_steps": 150, "batch_size": 40},
                       out=tmp_path_factory.mktemp("rbm") / "r", progress=False)


def beats_untrained(m: dict) -> None:
    assert m["pseudo_log_likelihood"] > m["untrained_pseudo_log_likelihood"] + 5
    assert m["reconstruction_mse"] < 0.6 * m["untrained_reconstruction_mse"]
    assert m["ais_log_likelihood"] > m["untrained_ais_log_likelihood"]


def test_rbm_pcd_beats_untrained(rbm_run):
    beats_untrained(rbm_run.evaluate())


def test_rbm_cd_k_beats_untrained(tmp_path):
    beats_untrained(genlab.train("rbm", overrides={**RBM, "persistent": False, "k": 2, "max_steps": 150,
                                                   "batch_size": 40}, out=tmp_path / "t", progress=False).evaluate())


def test_rbm_resume_with_persistent_chains(tmp_path):
    resume_equals_uninterrupted("rbm", tmp_path, RBM, 10)
    assert "chains.v" in load_file(str(tmp_path / "full" / "model.safetensors"))


def test_rbm_chains_pictures(rbm_run, tmp_path):
    out = genlab.load(rbm_run.path).sample(n=3, steps=20, snapshots=4)
    assert out.parts["from_noise"].images.shape[0] == out.parts["from_data"].images.shape[0] == 3 * 5
    names = sorted(p.name for p in out.to_files(tmp_path / "s"))
    assert names == ["chains-from-data-native.png", "chains-from-data.png",
                     "chains-from-noise-native.png", "chains-from-noise.png"]


@pytest.mark.parametrize("dataset", ["colours", "digits"])
def test_som_orders_the_map(dataset, tmp_path):
    run = genlab.train("som", overrides={**SOM, "dataset": dataset, "max_steps": 300}, out=tmp_path / "t",
                       progress=False)
    m = run.evaluate()
    assert m["topographic_error"] < 0.5 * m["untrained_topographic_error"]
    if dataset == "digits":  # 64-d: an untrained codebook spread over the box quantizes badly
        assert m["quantization_error"] < 0.7 * m["untrained_quantization_error"]
    names = sorted(p.name for p in run.sample(out=tmp_path / "s"))
    assert names == ["hits-native.png", "hits.png", "map-native.png", "map.png", "u-matrix-native.png",
                     "u-matrix.png"]


def test_som_on_a_csv_and_resume(tmp_path):
    rows = torch.rand(60, 5, generator=torch.Generator().manual_seed(0))
    (tmp_path / "v.csv").write_text("a,b,c,d,e\n" + "".join(",".join(f"{x:.4f}" for x in r) + "\n" for r in rows))
    resume_equals_uninterrupted("som", tmp_path, {**SOM, "data": str(tmp_path / "v.csv")}, 10)
    run = genlab.load(tmp_path / "full")
    assert run.evaluate()["quantization_error"] >= 0
    assert len(run.sample(out=tmp_path / "s")) == 6
