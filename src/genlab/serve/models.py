"""A run directory as the server sees it: a text model (it has `lm_parts`), a text-to-text model
(its `Sample` takes `text`: translation), or a sampler of typed outputs.

The server never asks which recipe made a run. A recipe whose `lm_parts()` exists is a text
model and is decoded by the batcher. A recipe whose `Sample` options take `text` turns each
prompt into one output text (Translations) through `Run.sample(text=[...])`, and streams the
greedy output through `Run.stream(text=...)`; the completion endpoints serve it. Every other run
is sampled through `Run.sample`, and what comes back is whatever `genlab.outputs` type the
recipe returns (Images for image models).
A conditional model names its classes in `recipe.label_names`; its `Sample` options take the
class index as `label` (and `mode="label"` when the recipe has sampling modes). A model without
classes whose `Sample` has a `prompt` option (text-conditional diffusion) gets the prompt as is.
"""
from __future__ import annotations

import dataclasses
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch

from ..errors import ConfigError
from .batching import Batcher


@dataclass
class ChatTemplate:
    """How chat messages become one prompt for a plain-text language model.

    The default renders

        <system>\\n\\nUser: <message>\\nAssistant: <message>\\n ... User: <message>\\nAssistant:

    and stops at "\\nUser:" so a model trained on plain text answers one turn. A run directory
    may hold `chat_template.json` with any of these fields to change it.
    """

    system: str = "{content}\n\n"
    user: str = "User: {content}\n"
    assistant: str = "Assistant: {content}\n"
    generation_prompt: str = "Assistant:"
    stop: list[str] = field(default_factory=lambda: ["\nUser:"])

    @classmethod
    def for_run(cls, run_dir: Path) -> "ChatTemplate":
        path = Path(run_dir) / "chat_template.json"
        if not path.is_file():
            return cls()
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
            return cls(**{k: values[k] for k in values if k in {f.name for f in dataclasses.fields(cls)}})
        except (OSError, ValueError, TypeError) as e:
            raise ConfigError(f"bad chat template {path}: {e}") from None

    def render(self, messages: list[dict[str, str]]) -> str:
        parts = [getattr(self, m["role"] if m["role"] != "tool" else "user").format(content=m["content"])
                 for m in messages]
        return "".join(parts) + self.generation_prompt


class ServedModel:
    """One model id of the server."""

    def __init__(self, name: str, run: Any, max_batch: int = 16, max_queue: int = 64):
        self.name = name
        self.run = run
        recipe = run.recipe
        self.recipe_name = getattr(recipe, "name", "")
        self.parts = recipe.lm_parts() if hasattr(recipe, "lm_parts") else None
        self.sample_fields = {f.name for f in dataclasses.fields(recipe.Sample)}
        self.labels: list[str] = list(getattr(recipe, "label_names", None) or [])
        self.lock = threading.Lock()  # one Run.sample at a time per model
        self.batcher: Batcher | None = None
        self.template = ChatTemplate()
        if self.parts is not None:
            self.parts.model.eval()
            self.batcher = Batcher(self.parts.model, max_batch=max_batch, max_queue=max_queue, name=name)
            self.template = ChatTemplate.for_run(Path(run.path))

    @property
    def kind(self) -> str:
        if self.parts is not None:
            return "text"
        return "text-to-text" if "text" in self.sample_fields else "sample"

    @property
    def context(self) -> int | None:
        return self.parts.block_size if self.parts is not None else None

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "recipe": self.recipe_name, "labels": self.labels, "context": self.context,
                "chat_stop": self.template.stop if self.parts is not None else []}

    # -- text ------------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return self.parts.tokenizer.encode(text)

    def decoder(self, prompt_ids: list[int]):
        """Continuation text decoded in the context of the prompt (BPE merges across the seam)."""
        tok = self.parts.tokenizer
        prefix = tok.decode(prompt_ids)
        return lambda ids: tok.decode(prompt_ids + list(ids))[len(prefix):]

    # -- text to text ------------------------------------------------------------------------------
    def convert(self, texts: list[str], **options: Any) -> list[str]:
        """One output text per input text (a translation model: beam search unless beam=1)."""
        out = self.sample(text=list(texts), **options)
        translations = getattr(out, "translations", None)
        if not isinstance(translations, list) or len(translations) != len(texts):
            raise TypeError(f"recipe {self.recipe_name} returned {type(out).__name__}, not one text per prompt")
        return translations

    def start_stream(self, text: str) -> Iterator[str]:
        """The greedy output of one text as pieces; a bad input (too long) fails here, at once."""
        return self.run.stream(text=text)

    def drain(self, pieces: Iterator[str], cancelled: threading.Event, emit: Any) -> None:
        """emit(piece) for each piece of a stream, holding the model; stops early when `cancelled`
        is set (the client went away)."""
        with self.lock, torch.inference_mode():
            for piece in pieces:
                if cancelled.is_set():
                    return
                emit(piece)

    # -- everything else ---------------------------------------------------------------------------
    def sample_options_for_prompt(self, prompt: str) -> dict[str, Any]:
        """The Sample options that make a conditional model draw `prompt`'s class."""
        prompt = prompt.strip()
        fields = self.sample_fields
        if not self.labels:
            if prompt and "prompt" in fields:   # a free-text model (text-conditional diffusion, clip)
                return {"prompt": prompt}
            if prompt:
                raise ConfigError(f"model {self.name} is unconditional: it takes no prompt (send an empty prompt)")
            return {}
        lowered = [x.lower() for x in self.labels]
        if prompt.lower() not in lowered:
            raise ConfigError(f"model {self.name} draws one of: {', '.join(self.labels)}; got prompt {prompt!r}")
        options: dict[str, Any] = {"label": lowered.index(prompt.lower())}
        if "mode" in fields:
            options["mode"] = "label"
        return options

    def sample(self, **options: Any) -> Any:
        with self.lock, torch.inference_mode():
            return self.run.sample(**options)
