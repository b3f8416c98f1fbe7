"""word2vec: skip-gram or CBOW word embeddings with negative sampling (models/word2vec.py).

The text is the language models' corpus (data/corpus.py: the embedded default or --data, the
first 90% trains, the last 10% is held out), split into lowercase words; words seen fewer
than `min_count` times are dropped, as gensim does. A batch is `batch_size` centre positions
of one seeded permutation per epoch; each centre draws a reduced window b in [1, window] (so
near words count more), frequent words are subsampled with Mikolov's keep probability
(sqrt(t/f) + t/f) and negatives come from the unigram distribution to the 3/4 power. Every
draw comes from the step's own generator, so `batch(index)` is a pure function of index.

Exploring (`genlab sample`): nearest neighbours of `words=...`, an analogy `analogy=a,b,c`
(a - b + c, as in king - man + woman), a 2-D PCA plot of the chosen words and their
neighbours, and every vector in the word2vec text format. Evaluation: the held-out negative-
sampling loss; with gensim's test data installed (or your own files), Google analogy
accuracy and WordSim-353 / SimLex-999 Spearman correlations.
"""
from __future__ import annotations

import importlib.util
import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.corpus import load_text_corpus
from ..data.text import read_text
from ..engine.config import TrainConfig
from ..engine.io import write_text
from ..errors import ConfigError, DataError
from ..models.word2vec import Word2Vec
from ..outputs import Bundle, Table, Texts, WordVectors
from .base import Recipe, SampleOptions

VAL_FRACTION = 0.1                      # the last 10% of the text is held out (as for the language models)
VOCAB_FILE = "vocab.json"
EXCERPT_WORDS = 40                      # words per excerpt of `genlab data`
SPAN_FACTOR = 3                         # a window looks this many times `window` words away past subsampled ones
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
# The evaluation files shipped in gensim's test data (found without importing gensim)
GENSIM_FILES = {"analogy": "questions-words.txt", "wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}


def split_words(text: str) -> list[str]:
    """Lowercase words (letters and digits, inner apostrophes kept); punctuation is dropped."""
    return _WORD.findall(text.lower())


def gensim_test_file(name: str) -> Path | None:
    """A file of gensim's bundled test data, or None when gensim is not installed."""
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "test" / "test_data" / name
    return path if path.is_file() else None


@dataclass
class Config(TrainConfig):
    arch: str = "skipgram"          # skipgram | cbow
    dim: int = 100                  # vector dimensions
    window: int = 5                 # largest distance of a context word (each centre draws 1..window)
    negative: int = 5               # negative samples per positive pair
    min_count: int = 5              # drop words seen fewer times in the training text
    sample: float = 1e-3            # subsampling threshold t of frequent words (0 = off)
    epochs: float = 5.0             # passes over the training words (sets max_steps; 0 = use max_steps)
    max_steps: int = 1000
    batch_size: int = 1024          # centre words per step
    lr: float = 0.025               # SGD learning rate of the summed pair losses (gensim's alpha)
    lr_schedule: str = "cosine"
    min_lr_ratio: float = 0.004     # the lr decays to lr * this (gensim: 0.0001 / 0.025)
    eval_every: int = 0
    save_every: int = 0
    eval_centres: int = 20000       # held-out centre words scored by val_loss
    analogy_file: str = "auto"      # Google analogy questions file; auto = gensim's test data if installed, "" = off
    wordsim_file: str = "auto"      # WordSim-353 pairs (tab separated); auto = gensim's test data, "" = off
    simlex_file: str = "auto"       # SimLex-999 pairs (tab separated); auto = gensim's test data, "" = off
    restrict_vocab: int = 30000     # analogies search only the most frequent words (gensim: 300000)
    threads: int = 1
    bounds = {"dim": "[1, 10000]", "window": "[1, 100]", "negative": "[1, 1000]", "min_count": "[1, inf)",
              "sample": "[0, 1)", "epochs": "[0, 10000]", "eval_centres": "[1, inf)", "restrict_vocab": "[1, inf)"}

    def check(self) -> None:
        if self.arch not in ("skipgram", "cbow"):
            raise ConfigError(f"invalid config: arch must be skipgram or cbow, got {self.arch!r}")


@dataclass
class Sample(SampleOptions):
    n: int = 10                     # neighbours shown per word
    words: str = ""                 # comma-separated query words (empty: a few frequent words)
    analogy: str = ""               # "a,b,c": the words nearest a - b + c (king,man,woman -> queen)
    plot_neighbours: int = 3        # neighbours of each query word added to the PCA plot
    export: bool = True             # also write every vector in the word2vec text format

    def check(self) -> None:
        if self.analogy and len([w for w in self.analogy.split(",") if w.strip()]) != 3:
            raise ConfigError(f"analogy takes three comma-separated words a,b,c (a - b + c), got {self.analogy!r}")
        if self.plot_neighbours < 0:
            raise ConfigError("plot_neighbours must be >= 0")


class Word2VecRecipe(Recipe):
    name = "word2vec"
    Config = Config
    Sample = Sample
    presets = {"cbow": {"arch": "cbow", "lr": 0.05}}
    words: list[str] | None = None

    # -- vocabulary (an artifact: the model's rows mean these words) ------------------------------
    def save_artifacts(self, run_dir: Path) -> None:
        write_text(Path(run_dir) / VOCAB_FILE, json.dumps({"words": self.words, "counts": self.counts.tolist()}))

    def load_artifacts(self, run_dir: Path) -> None:
        d = json.loads((Path(run_dir) / VOCAB_FILE).read_text(encoding="utf-8"))
        self.set_vocab(d["words"], np.asarray(d["counts"], dtype=np.int64))

    def set_vocab(self, words: list[str], counts: np.ndarray) -> None:
        self.words, self.counts = list(words), counts
        self.index = {w: i for i, w in enumerate(self.words)}
        c = self.config
        freq = counts / counts.sum()
        # Mikolov's keep probability, as in the C tool and gensim: sqrt(t/f) + t/f, capped at 1
        self.keep_prob = (torch.from_numpy(np.minimum(1.0, np.sqrt(c.sample / freq) + c.sample / freq))
                          if c.sample > 0 else torch.ones(len(words), dtype=torch.float64)).float()
        weights = torch.from_numpy(counts.astype(np.float64)) ** 0.75
        self.neg_table = (weights.cumsum(0) / weights.sum()).float()

    # -- data --------------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        c = self.config
        text = load_text_corpus(c.data or None)
        split_at = int(len(text) * (1 - VAL_FRACTION))
        train, val = split_words(text[:split_at]), split_words(text[split_at:])
        if self.words is None:  # a fresh run: the vocabulary of the training part only
            counts = Counter(train)
            vocab = sorted((w for w, n in counts.items() if n >= c.min_count), key=lambda w: (-counts[w], w))
            if len(vocab) < 2:
                raise DataError(f"{c.data or 'corpus'}: fewer than 2 words occur min_count={c.min_count} times")
            self.set_vocab(vocab, np.asarray([counts[w] for w in vocab], dtype=np.int64))
        self.train_ids = self.encode(train)
        self.val_ids = self.encode(val)
        if len(self.train_ids) < 2:
            raise DataError(f"{c.data or 'corpus'}: too little text to train on")

    def show_data(self, n: int | None = None) -> Texts:
        """n excerpts (4 by default) of the training words as the model sees them: lowercase,
        punctuation dropped, words under min_count removed; spread evenly over the training part."""
        self.load_data_once()
        n, ids = n or 4, self.train_ids
        texts, heads = [], []
        for i in range(n):
            start = len(ids) * i // n
            texts.append(" ".join(self.words[j] for j in ids[start:start + EXCERPT_WORDS].tolist()))
            heads.append(f"excerpt {i + 1} of {n}: training words {start:,}-{start + EXCERPT_WORDS:,} of "
                         f"{len(ids):,} ({self.config.data or 'embedded corpus'}, vocabulary {len(self.words):,})")
        return Texts(texts, name="data", headings=heads)

    def encode(self, words: list[str]) -> torch.Tensor:
        """Ids of the in-vocabulary words (out-of-vocabulary words are removed, as in gensim)."""
        return torch.tensor([self.index[w] for w in words if w in self.index], dtype=torch.long)

    def setup(self, training: bool, resume: bool = False) -> None:
        super().setup(training, resume)
        c = self.config
        if training and c.epochs > 0:  # epochs count words, the trainer counts steps
            c.max_steps = max(1, math.ceil(c.epochs * len(self.train_ids) / c.batch_size))

    def build_modules(self) -> dict[str, nn.Module]:
        if self.words is None:
            self.load_data_once()
        torch.manual_seed(self.config.seed)
        return {"model": Word2Vec(len(self.words), self.config.dim, cbow=self.config.arch == "cbow")}

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.SGD(self.modules["model"].parameters(), lr=self.config.lr)}

    def examples(self, ids: torch.Tensor, positions: torch.Tensor, g: torch.Generator
                 ) -> dict[str, torch.Tensor]:
        """Centres at `positions` of `ids` with their windows, subsampling and negatives."""
        c, n = self.config, len(positions)
        reach = torch.randint(1, c.window + 1, (n, 1), generator=g)
        centre = ids[positions]
        keep_centre = torch.rand(n, 1, generator=g) < self.keep_prob[centre][:, None]
        # As gensim and the C tool: subsampled words are removed *before* windowing, so a window
        # reaches past them. Each side looks up to SPAN_FACTOR * window words away and keeps the
        # first `reach` words that survive subsampling.
        span = SPAN_FACTOR * c.window
        sides = []
        for sign in (-1, 1):
            pos = positions[:, None] + sign * torch.arange(1, span + 1)[None]
            inside = (pos >= 0) & (pos < len(ids))
            words = ids[pos.clamp(0, len(ids) - 1)]
            kept = inside & (torch.rand(n, span, generator=g) < self.keep_prob[words])
            rank = kept.long().cumsum(1)
            first = torch.where(kept, rank, span + 1).argsort(dim=1, stable=True)[:, :c.window]
            sides.append((words.gather(1, first), (kept & (rank <= reach)).gather(1, first)))
        context = torch.cat([sides[0][0], sides[1][0]], 1)
        mask = torch.cat([sides[0][1], sides[1][1]], 1) & keep_centre
        shape = (n, c.negative) if c.arch == "cbow" else (n, 2 * c.window, c.negative)
        negatives = torch.searchsorted(self.neg_table, torch.rand(shape, generator=g)).clamp(max=len(self.words) - 1)
        return {"centre": centre, "context": context, "mask": mask, "negatives": negatives}

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        positions = self.batch_indices(index, len(self.train_ids))
        # each rank's shard draws its own windows and negatives
        ex = self.examples(self.train_ids, positions, self.step_rng(index, stream=1 + self.dist.rank))
        return {k: v.to(self.device) for k, v in ex.items()}

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        loss_sum, pairs = self.train_modules["model"](**batch)
        # the summed loss: each pair moves its rows by lr, as in the C tool (a mean would divide lr by the batch)
        self.optimize("model", loss_sum)
        return {"loss": loss_sum.item() / max(1.0, pairs.item()), "pairs": pairs.item()}

    # -- evaluation --------------------------------------------------------------------------------
    def unit_vectors(self) -> torch.Tensor:
        v = self.modules["model"].vectors().float().cpu()
        return v / v.norm(dim=1, keepdim=True).clamp(min=1e-12)

    def evaluate(self) -> dict[str, float]:
        self.load_data_once()
        c = self.config
        out: dict[str, float] = {}
        if len(self.val_ids) > 1:
            g = torch.Generator().manual_seed(12345)
            pos = torch.randint(0, len(self.val_ids), (min(c.eval_centres, len(self.val_ids)),), generator=g)
            loss_sum, pairs = self.modules["model"](**self.examples(self.val_ids, pos, g))
            out["val_loss"] = loss_sum.item() / max(1.0, pairs.item())
            out["untrained_val_loss"] = (1 + c.negative) * math.log(2)  # zero output vectors: every score 0
        vecs = self.unit_vectors()
        path = self.eval_file(c.analogy_file, "analogy")
        if path:
            acc, coverage = analogy_accuracy(vecs, self.index, read_analogies(path), c.restrict_vocab)
            out.update(analogy_accuracy=acc, analogy_coverage=coverage)
        for key, name in (("wordsim_file", "wordsim353"), ("simlex_file", "simlex999")):
            path = self.eval_file(getattr(c, key), name)
            if path:
                rho, coverage = similarity_spearman(vecs, self.index, read_word_pairs(path))
                out.update({f"{name}_spearman": rho, f"{name}_coverage": coverage})
        return out

    @staticmethod
    def eval_file(setting: str, name: str) -> Path | None:
        if not setting:
            return None
        if setting == "auto":
            return gensim_test_file(GENSIM_FILES[name])
        path = Path(setting)
        if not path.is_file():
            raise DataError(f"{name} file not found: {path}")
        return path

    # -- exploring ---------------------------------------------------------------------------------
    def lookup(self, word: str) -> int:
        w = word.strip().lower()
        if w not in self.index:
            raise ConfigError(f"'{word.strip()}' is not in the vocabulary ({len(self.words)} words, "
                              f"min_count={self.config.min_count})")
        return self.index[w]

    def nearest(self, query: torch.Tensor, n: int, exclude: list[int]) -> list[tuple[str, float]]:
        sims = self.unit_vectors() @ (query / query.norm().clamp(min=1e-12))
        sims[exclude] = -math.inf
        top = sims.topk(min(n, len(self.words) - len(exclude)))
        return [(self.words[i], float(s)) for s, i in zip(top.values.tolist(), top.indices.tolist())]

    def default_words(self, k: int = 6) -> list[str]:
        """Frequent words of four letters or more (the most frequent ones are function words)."""
        return [w for w in self.words if len(w) >= 4 and w.isalpha()][:k]

    def generate(self, opts: Sample) -> Bundle:
        """Nearest neighbours (cosine) of the query words, the analogy when asked, a PCA plot of
        the query words and their neighbours, and every vector (word2vec text format)."""
        opts.check()
        vecs = self.unit_vectors()
        query = [w.strip().lower() for w in opts.words.split(",") if w.strip()] or self.default_words()
        ids = [self.lookup(w) for w in query]
        rows, plotted = [], list(query)
        for w, i in zip(query, ids):
            for rank, (other, sim) in enumerate(self.nearest(vecs[i], opts.n, [i]), 1):
                rows.append([w, rank, other, round(sim, 4)])
                if rank <= opts.plot_neighbours and other not in plotted:
                    plotted.append(other)
        parts = {"neighbours": Table(["word", "rank", "neighbour", "cosine"], rows, name="neighbours",
                                     title="nearest neighbours (cosine similarity)")}
        if opts.analogy:
            a, b, c = [self.lookup(w) for w in opts.analogy.split(",")]
            found = self.nearest(vecs[a] - vecs[b] + vecs[c], opts.n, [a, b, c])
            label = f"{self.words[a]} - {self.words[b]} + {self.words[c]}"
            parts["analogy"] = Table(["query", "rank", "word", "cosine"],
                                     [[label, r, w, round(s, 4)] for r, (w, s) in enumerate(found, 1)],
                                     name="analogy", title=f"analogy: {label} = ?")
        coords = pca_2d(vecs[[self.index[w] for w in plotted]])
        parts["projection"] = Table(["word", "pc1", "pc2"],
                                    [[w, round(float(x), 4), round(float(y), 4)] for w, (x, y) in zip(plotted, coords)],
                                    name="projection", title="2-D PCA of the query words and their neighbours",
                                    plot=partial(plot_projection, set(query)))
        if opts.export:
            parts["vectors"] = WordVectors(self.words, self.modules["model"].vectors().float().cpu().numpy())
        return Bundle(parts)


# -- evaluation helpers ------------------------------------------------------------------------------
def read_analogies(path: Path) -> list[tuple[str, str, str, str]]:
    """Questions "a b c d" (a is to b as c is to d); ": section" lines are headers."""
    out = []
    for line in read_text(path).text.splitlines():
        parts = line.lower().split()
        if len(parts) == 4 and not line.startswith(":"):
            out.append(tuple(parts))
    if not out:
        raise DataError(f"{path}: no analogy questions (lines of four words)")
    return out


def read_word_pairs(path: Path) -> list[tuple[str, str, float]]:
    """Rows "word1 <tab> word2 <tab> score"; '#' comments and a non-numeric header are skipped."""
    out = []
    for line in read_text(path).text.splitlines():
        parts = line.strip().split("\t")
        if line.startswith("#") or len(parts) < 3:
            continue
        try:
            out.append((parts[0].lower(), parts[1].lower(), float(parts[2])))
        except ValueError:
            continue  # header
    if not out:
        raise DataError(f"{path}: no word pairs (word1 TAB word2 TAB score)")
    return out


def analogy_accuracy(vecs: torch.Tensor, index: dict[str, int], questions: list[tuple[str, str, str, str]],
                     restrict: int) -> tuple[float, float]:
    """3CosAdd accuracy as gensim's evaluate_word_analogies computes it: questions with a word
    outside the `restrict` most frequent are skipped; the answer is the nearest word to
    b - a + c (unit vectors) other than a, b, c. Returns (accuracy, share of questions asked)."""
    known = [q for q in questions if all(w in index and index[w] < restrict for w in q)]
    if not known:
        return 0.0, 0.0
    ids = torch.tensor([[index[w] for w in q] for q in known])
    pool = vecs[:restrict]
    correct = 0
    for chunk in ids.split(512):
        target = pool[chunk[:, 1]] - pool[chunk[:, 0]] + pool[chunk[:, 2]]
        sims = (target / target.norm(dim=1, keepdim=True)) @ pool.t()
        sims.scatter_(1, chunk[:, :3], -math.inf)
        correct += int((sims.argmax(1) == chunk[:, 3]).sum())
    return correct / len(known), len(known) / len(questions)


def similarity_spearman(vecs: torch.Tensor, index: dict[str, int], pairs: list[tuple[str, str, float]]
                        ) -> tuple[float, float]:
    """Spearman correlation of cosine similarity with human scores over the pairs whose two
    words are known; returns (rho, share of pairs scored)."""
    from scipy.stats import spearmanr

    known = [(index[a], index[b], s) for a, b, s in pairs if a in index and b in index]
    if len(known) < 3:
        return 0.0, len(known) / len(pairs)
    a, b, human = zip(*known)
    cos = (vecs[list(a)] * vecs[list(b)]).sum(1).numpy()
    return float(spearmanr(cos, human).statistic), len(known) / len(pairs)


def pca_2d(x: torch.Tensor) -> np.ndarray:
    """The rows of x on their first two principal components."""
    x = x - x.mean(0)
    if len(x) < 2:
        return np.zeros((len(x), 2), dtype=np.float32)
    _, _, v = torch.linalg.svd(x, full_matrices=False)
    coords = x @ v[:2].t()
    return torch.nn.functional.pad(coords, (0, 2 - coords.shape[1])).numpy()


def plot_projection(query: set[str], table: Table, path: Path) -> Path:
    """Words at their PCA coordinates; query words in bold."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..engine.plots import save_figure

    fig, ax = plt.subplots(figsize=(7, 6))
    for word, x, y in table.rows:
        bold = word in query
        ax.scatter([x], [y], s=20, color="tab:red" if bold else "tab:blue")
        ax.annotate(word, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=9,
                    fontweight="bold" if bold else "normal")
    ax.set_title(table.title)
    ax.set_xlabel("pc1")
    ax.set_ylabel("pc2")
    return save_figure(fig, path)
