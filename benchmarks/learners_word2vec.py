"""word2vec side by side with gensim.models.Word2Vec: same corpus, same hyperparameters.

    python benchmarks/learners_word2vec.py [--data ../shared/data/text] [--arch skipgram|cbow]
                                           [--epochs 5] [--out results.json]

Both train on the same words: the recipe's training part (the first 90% of the text,
lowercased words, data/corpus.py + recipes/word2vec.split_words), fed to gensim as
10,000-word chunks (gensim's longest sentence). Same dim 100, window 5, 5 negatives,
min_count 5, sample 1e-3, the same epochs, lr 0.025 -> 0.0001, one worker / one thread.
Both models are scored by the same code (genlab's, which follows gensim's
evaluate_word_analogies / evaluate_word_pairs): Google analogy accuracy (3CosAdd over the
30,000 most frequent words), WordSim-353 and SimLex-999 Spearman. Training speed is words
per second of corpus (before subsampling), the ratio genlab / gensim.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

import genlab
from genlab.recipes.word2vec import (analogy_accuracy, gensim_test_file, read_analogies, read_word_pairs,
                                     similarity_spearman)

REPO = Path(__file__).resolve().parents[1]


def scores(vectors: torch.Tensor, words: list[str], restrict: int) -> dict[str, float]:
    unit = vectors / vectors.norm(dim=1, keepdim=True).clamp(min=1e-12)
    index = {w: i for i, w in enumerate(words)}
    acc, cov = analogy_accuracy(unit, index, read_analogies(gensim_test_file("questions-words.txt")), restrict)
    out = {"analogy_accuracy": acc, "analogy_coverage": cov}
    for name, file in (("wordsim353", "wordsim353.tsv"), ("simlex999", "simlex999.txt")):
        rho, cov = similarity_spearman(unit, index, read_word_pairs(gensim_test_file(file)))
        out.update({f"{name}_spearman": rho, f"{name}_coverage": cov})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "text"))
    ap.add_argument("--arch", default="skipgram", choices=["skipgram", "cbow"])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--runs", default="/tmp/genlab-bench-w2v")
    ap.add_argument("--gensim-seeds", type=int, default=1, help="gensim runs with seeds 0..N-1 (its seed spread)")
    ap.add_argument("--reuse", action="store_true", help="score the existing genlab run in --runs, do not retrain")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    from gensim.models import Word2Vec as GensimWord2Vec

    torch.set_num_threads(1)
    over = {"arch": a.arch, "epochs": a.epochs, "batch_size": a.batch_size, "threads": 1, "eval_every": 0,
            "save_every": 0, "analogy_file": "", "wordsim_file": "", "simlex_file": ""}
    if a.arch == "cbow":
        over["lr"] = 0.05
    t0 = time.perf_counter()
    if a.reuse:
        run = genlab.load(Path(a.runs) / a.arch)
        genlab_s = float("nan")
    else:
        run = genlab.train("word2vec", data=a.data, overrides=over, out=Path(a.runs) / a.arch, progress=False)
        genlab_s = time.perf_counter() - t0
    r = run.recipe
    r.load_data_once()
    train_words = [r.words[i] for i in r.train_ids.tolist()]
    n_words = len(train_words)
    g_vec = scores(r.modules["model"].vectors().float().cpu(), r.words, r.config.restrict_vocab)

    chunks = [train_words[i:i + 10000] for i in range(0, n_words, 10000)]
    seeds = []
    for seed in range(a.gensim_seeds):
        t0 = time.perf_counter()
        gm = GensimWord2Vec(chunks, vector_size=r.config.dim, window=r.config.window, negative=r.config.negative,
                            min_count=r.config.min_count, sample=r.config.sample, sg=int(a.arch == "skipgram"),
                            epochs=a.epochs, alpha=0.05 if a.arch == "cbow" else 0.025, min_alpha=0.0001,
                            workers=1, seed=seed)
        gensim_s = time.perf_counter() - t0
        seeds.append(scores(torch.from_numpy(np.asarray(gm.wv.vectors)), list(gm.wv.index_to_key),
                            r.config.restrict_vocab))
    s_vec = seeds[0]

    res = {"arch": a.arch, "train_words": n_words, "vocab": len(r.words), "epochs": a.epochs,
           "genlab": {**g_vec, "seconds": genlab_s, "words_per_s": n_words * a.epochs / genlab_s},
           "gensim": {**s_vec, "seconds": gensim_s, "words_per_s": n_words * a.epochs / gensim_s}}
    if len(seeds) > 1:
        res["gensim_seeds"] = seeds
        for k in ("analogy_accuracy", "wordsim353_spearman", "simlex999_spearman"):
            vals = [x[k] for x in seeds]
            print(f"gensim over {len(vals)} seeds: {k} min {min(vals):.4f} max {max(vals):.4f}")
    res["speed_ratio_genlab_over_gensim"] = res["genlab"]["words_per_s"] / res["gensim"]["words_per_s"]
    print(f"| {a.arch} | analogy acc | WS-353 rho | SimLex rho | words/s | wall s |")
    print("|---|---|---|---|---|---|")
    for k in ("genlab", "gensim"):
        m = res[k]
        print(f"| {k} | {m['analogy_accuracy']:.4f} (cov {m['analogy_coverage']:.2f}) | "
              f"{m['wordsim353_spearman']:.4f} (cov {m['wordsim353_coverage']:.2f}) | "
              f"{m['simlex999_spearman']:.4f} | {m['words_per_s']:.0f} | {m['seconds']:.1f} |")
    print(f"speed ratio genlab/gensim: {res['speed_ratio_genlab_over_gensim']:.3f}")
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=2))
    json.dump(res, sys.stdout)
    print()


if __name__ == "__main__":
    main()
