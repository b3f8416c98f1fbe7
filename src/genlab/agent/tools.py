"""Tools an agent can call: name, description, and a function from one string to one string.

- calculator: arithmetic through genlab's safe expression parser (data/synthetic.py): the
  expression is parsed with `ast` and only numbers, + - * / ** and a few functions are
  evaluated, never Python code.
- search: BM25 over a local text corpus (a file or folder, default: genlab's embedded text).
- draw / sample: genlab models behind an OpenAI-compatible server, as tools.
"""
from __future__ import annotations

import base64
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import GenlabError

_WORD = re.compile(r"\w+")


@dataclass
class Tool:
    name: str
    description: str
    func: Callable[[str], str]

    def __call__(self, text: str) -> str:
        try:
            return self.func(text)
        except GenlabError as e:  # a tool's error is an observation the model can react to
            return f"error: {e}"


def calculate(expression: str) -> str:
    from ..data.synthetic import make_curve_fn

    expr = expression.strip().strip("`'\"").replace("^", "**").replace("×", "*").replace("÷", "/")
    if not expr or not re.search(r"\d", expr):
        return f"error: {expression!r} is not an arithmetic expression"
    if re.search(r"\bx\b", expr):  # the curve parser's variable means nothing here
        return "error: write numbers only (no variables)"
    value = float(make_curve_fn(expr)(np.zeros(1))[0])
    if not math.isfinite(value):
        return f"error: {expr} is not a finite number"
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.10g}"


calculator = Tool("calculator", "arithmetic on numbers, e.g. 12 * (3 + 4) / 2 or sqrt(2) ** 3", calculate)


class BM25:
    """Okapi BM25 over passages (k1 = 1.5, b = 0.75)."""

    def __init__(self, passages: list[str], k1: float = 1.5, b: float = 0.75):
        self.passages = passages
        self.k1, self.b = k1, b
        self.docs = [Counter(_WORD.findall(p.lower())) for p in passages]
        self.lengths = [sum(d.values()) for d in self.docs]
        self.avg = sum(self.lengths) / max(1, len(self.lengths))
        df = Counter(w for d in self.docs for w in d)
        n = len(self.docs)
        self.idf = {w: math.log(1 + (n - f + 0.5) / (f + 0.5)) for w, f in df.items()}

    @classmethod
    def from_text(cls, text: str, passage_chars: int = 600) -> "BM25":
        """Paragraphs (blank-line separated) joined up to about passage_chars and long ones cut, so
        a one-line heading never outranks a passage that explains the words."""
        passages, pending = [], ""
        for para in re.split(r"\n\s*\n", text):
            para = (pending + "\n" + para.strip()).strip()
            pending = ""
            if len(para) < passage_chars // 2:
                pending = para
                continue
            while para:
                cut = para.rfind(" ", 0, passage_chars) if len(para) > passage_chars else len(para)
                cut = cut if cut > 0 else passage_chars
                passages.append(para[:cut].strip())
                para = para[cut:].strip()
        if pending:
            passages.append(pending)
        return cls(passages)

    def scores(self, query: str) -> list[float]:
        terms = _WORD.findall(query.lower())
        out = []
        for d, length in zip(self.docs, self.lengths):
            s = 0.0
            for t in terms:
                f = d.get(t, 0)
                if f:
                    s += self.idf[t] * f * (self.k1 + 1) / (f + self.k1 * (1 - self.b + self.b * length / self.avg))
            out.append(s)
        return out

    def search(self, query: str, k: int = 3) -> list[tuple[float, str]]:
        scored = sorted(zip(self.scores(query), self.passages), key=lambda x: -x[0])
        return [(s, p) for s, p in scored[:k] if s > 0]


def search_tool(corpus: str | Path | None = None, k: int = 2, max_chars: int = 400) -> Tool:
    from ..data.corpus import load_text_corpus

    index = BM25.from_text(load_text_corpus(corpus))

    def search(query: str) -> str:
        hits = index.search(query, k)
        return "\n---\n".join(p[:max_chars] for _, p in hits) if hits else "no passage matches"

    where = str(corpus) if corpus else "genlab's embedded text (Python's documentation topics)"
    return Tool("search", f"keyword search over {where}; input: a few keywords", search)


def draw_image_tool(client, model: str, out_dir: str | Path, labels: list[str] | None = None) -> Tool:
    """Draw one image with a genlab image model; input: the class or attribute (e.g. glasses)."""
    out = Path(out_dir)
    counter = {"n": 0}

    def draw(prompt: str) -> str:
        png = base64.b64decode(client.image(prompt.strip().strip("'\""), model=model, n=1)[0])
        out.mkdir(parents=True, exist_ok=True)
        counter["n"] += 1
        path = out / f"{model}-{counter['n']:02d}.png"
        path.write_bytes(png)
        return f"saved the image to {path}"

    kinds = f" ({', '.join(labels)})" if labels else ""
    return Tool("draw", f"draw a picture with the model {model}; input: what to draw{kinds}", draw)


def sample_text_tool(client, model: str, max_tokens: int = 60) -> Tool:
    def sample(prompt: str) -> str:
        return prompt + client.complete(prompt, model=model, max_tokens=max_tokens, temperature=0.8)

    return Tool("write", f"continue a text with the language model {model}; input: the start of the text", sample)


def default_tools(client, corpus: str | Path | None = None, image_model: str | None = None,
                  text_model: str | None = None, out_dir: str | Path = "agent-images") -> list[Tool]:
    tools = [calculator, search_tool(corpus)]
    if image_model:
        tools.append(draw_image_tool(client, image_model, out_dir))
    if text_model:
        tools.append(sample_text_tool(client, text_model))
    return tools
