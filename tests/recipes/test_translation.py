"""translation: train / sample / eval through the API and the CLI, tokenizers, resume, bad input."""
import pytest
import torch
from safetensors.torch import load_file

import genlab
from genlab.api import RunDir
from genlab.cli import main as cli
from genlab.data.parallel import scene_pairs
from genlab.engine.config import apply_overrides
from genlab.errors import ConfigError
from genlab.outputs import Translations
from genlab.recipes.translation import TranslationConfig, TranslationRecipe

TINY = {"d_model": 32, "n_head": 2, "n_enc": 1, "n_dec": 1, "d_ff": 64, "vocab_size": 300, "max_tokens": 600,
        "max_len": 128, "eval_sentences": 20, "beam": 2, "log_every": 2, "device": "cpu", "warmup_steps": 2}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A small folder in the Multi30k layout, cut from the scene corpus."""
    folder = tmp_path_factory.mktemp("pairs")
    pairs = scene_pairs(700, seed=3)
    for split, rows in (("train", pairs[:600]), ("val", pairs[600:640]), ("test_small", pairs[640:670])):
        (folder / f"{split}.en").write_text("".join(e + "\n" for e, _ in rows), encoding="utf-8")
        (folder / f"{split}.fr").write_text("".join(f + "\n" for _, f in rows), encoding="utf-8")
    return folder


def _train(out, data, **over):
    return genlab.train("translation", data=str(data), overrides={**TINY, **over}, out=out, progress=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory, data_dir):
    return _train(tmp_path_factory.mktemp("run") / "r", data_dir, max_steps=6, eval_every=6, save_every=6)


def test_train_writes_tokenizer_weights_and_logs(run):
    assert (run.path / "tokenizer-joint" / "tokenizer.json").is_file()
    assert (run.path / "model.safetensors").is_file()
    train = [r for r in RunDir(run.path).read_metrics() if r.get("kind") == "train"]
    assert len(train) == 3 and train[-1]["loss"] < train[0]["loss"]


def test_sample_text_list_and_file_keep_alignment(run, tmp_path):
    one = run.sample(text="A man is walking in the park.", beam=1)
    assert isinstance(one, Translations) and len(one.translations) == 1 and one.tgt_lang == "fr"
    many = run.sample(text=["A dog is running.", "", "Two women are singing, in the garden."], beam=2)
    assert len(many.translations) == 3 and many.translations[1] == ""
    src = tmp_path / "news.en"
    src.write_text("A boy is eating an apple.\n\nA girl is reading a book.\n", encoding="utf-8")
    paths = run.sample(out=tmp_path / "out", input=str(src))
    fr = (tmp_path / "out" / "news.fr").read_text(encoding="utf-8").split("\n")
    assert paths[0].name == "news.fr" and len(fr) == 4 and fr[1] == "" and fr[3] == ""
    assert many.to_json()["sources"][2] == "Two women are singing, in the garden."


def test_stream_equals_greedy(run):
    text = "A little boy is singing on a bridge."
    with run.recipe.eval_mode():
        greedy = run.recipe.translate([text], beam=1)[0]
    assert "".join(run.stream(text=text)) == greedy
    with pytest.raises(ConfigError, match="beam"):
        run.stream(text=text, beam=0)


def test_eval_reports_bleu_chrf_greedy_and_beam_with_signatures(run):
    m = genlab.load(run.path).evaluate()  # what `genlab eval RUN` does; during training only val is scored
    for key in ("val_loss", "perplexity", "val_bleu", "test_small_bleu_greedy", "test_small_bleu_beam2",
                "test_small_chrf_greedy", "test_small_chrf_beam2"):
        assert isinstance(m[key], float), key
    assert m["perplexity"] == pytest.approx(2.718281828 ** m["val_loss"], rel=1e-4)
    assert "nrefs:1" in m["bleu_signature"] and "nc:6" in m["chrf_signature"]


def test_separate_vocabularies_round_trip_and_never_overwrite(tmp_path, data_dir):
    cfg = apply_overrides(TranslationConfig(), {**TINY, "vocab": "separate", "data": str(data_dir)})
    r = TranslationRecipe(cfg, run_dir=tmp_path)
    r.setup(training=True)
    r.save_artifacts(tmp_path)
    assert (tmp_path / "tokenizer-src" / "tokenizer.json").is_file()
    assert (tmp_path / "tokenizer-tgt" / "tokenizer.json").is_file()
    src, tgt = r.src_tok, r.tgt_tok
    assert src.fingerprint() != tgt.fingerprint()
    for text in ("Une vieille femme lit un livre près de la rivière.", "Ωmega ☃ naïve — 東京"):
        assert tgt.decode(tgt.encode(text)) == text and src.decode(src.encode(text)) == text
    loaded = TranslationRecipe(cfg, run_dir=tmp_path)
    loaded.setup(training=False)
    assert loaded.tgt_tok.fingerprint() == tgt.fingerprint() and loaded.src_tok.fingerprint() == src.fingerprint()
    assert loaded.modules["model"].config.shared_embeddings is False


def test_resume_equals_uninterrupted(tmp_path, data_dir):
    # a constant schedule: a cosine one would decay over max_steps, which differs between the two runs
    over = {"max_steps": 4, "eval_every": 0, "save_every": 0, "dropout": 0.2, "lr_schedule": "constant"}
    _train(tmp_path / "full", data_dir, **over)
    _train(tmp_path / "half", data_dir, **{**over, "max_steps": 2})
    genlab.train("translation", data=str(data_dir), overrides={"max_steps": 4}, out=tmp_path / "half",
                 resume=True, progress=False)
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "half" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_batches_are_a_pure_function_of_the_index(run):
    r = run.recipe
    r.load_data_once()
    first = [r.batch(i)[0] for i in (0, 5, len(r.train_batches) + 2)]
    again = [r.batch(i)[0] for i in (len(r.train_batches) + 2, 5, 0)][::-1]
    assert all(torch.equal(a, b) for a, b in zip(first, again))


def test_cli_sample_and_bad_input(run, capsys, tmp_path):
    # on the command line text is one sentence, commas and all (several: input=FILE)
    assert cli(["sample", str(run.path), "--set", "text=A man, a dog.", "--out", str(tmp_path / "s")]) == 0
    assert (tmp_path / "s" / "translations.fr").read_text(encoding="utf-8").count("\n") == 1
    assert cli(["sample", str(run.path), "--set", "text=A man rides a bike.", "--stream"]) == 0
    long = " ".join(["elephant"] * 200)
    assert cli(["sample", str(run.path), "--set", f"text={long}"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("genlab: error:") and "split it" in err[0]
    assert cli(["sample", str(run.path), "--set", "beam=0"]) == 1
    assert cli(["train", "translation", "--set", "src=en", "--set", "tgt=en", "--out", str(tmp_path / "x")]) == 1
    assert cli(["sample", str(run.path), "--set", f"input={tmp_path / 'missing.en'}"]) == 1
    with pytest.raises(ConfigError):
        run.sample(text="x", input="y")


def test_book_preset_is_the_books_model_and_schedule():
    from genlab.api import build_config
    from genlab.models.seq2seq import Seq2Seq, Seq2SeqConfig

    c = build_config(TranslationRecipe, "book")
    assert (c.n_enc, c.n_dec, c.d_model, c.n_head, c.d_ff) == (6, 6, 256, 8, 1024)
    assert (c.optimizer, c.beta1, c.beta2, c.adam_eps, c.lr_schedule, c.warmup_steps, c.label_smoothing) == \
        ("adam", 0.9, 0.98, 1e-9, "noam", 2000, 0.1)
    model = Seq2Seq(Seq2SeqConfig(src_vocab=300, tgt_vocab=300, d_model=c.d_model, n_head=c.n_head, n_enc=c.n_enc,
                                  n_dec=c.n_dec, d_ff=c.d_ff, norm_first=c.norm_first, shared_embeddings=True))
    assert len(model.encoder) == len(model.decoder) == 6
    assert model(torch.randint(3, 300, (2, 7)), torch.randint(3, 300, (2, 5))).shape == (2, 5, 300)
