"""Prompt templates and few-shot prompts: named {fields}, checked when filled."""
from __future__ import annotations

import string
from dataclasses import dataclass, field

from ..errors import ConfigError


@dataclass
class PromptTemplate:
    """A string with {named} fields; format() names any field left unfilled or unknown."""

    template: str

    @property
    def fields(self) -> list[str]:
        return [name for _, name, _, _ in string.Formatter().parse(self.template) if name]

    def format(self, **values: object) -> str:
        missing = [f for f in self.fields if f not in values]
        unknown = [k for k in values if k not in self.fields]
        if missing or unknown:
            raise ConfigError(f"prompt template: missing {missing or 'nothing'}, unknown {unknown or 'nothing'}")
        return self.template.format(**values)


@dataclass
class FewShot:
    """prefix + each example through `example` + suffix (which holds the new input's fields)."""

    example: PromptTemplate
    examples: list[dict[str, object]]
    suffix: PromptTemplate
    prefix: str = ""
    separator: str = "\n\n"

    def format(self, **values: object) -> str:
        parts = ([self.prefix] if self.prefix else []) + [self.example.format(**e) for e in self.examples]
        return self.separator.join(parts + [self.suffix.format(**values)])


REACT_SYSTEM = PromptTemplate("""Answer the question as well as you can. You have these tools:

{tools}

Use exactly this format:

Thought: what to do next
Action: one of [{tool_names}]
Action Input: the input for the tool
Observation: the tool's result (written for you)
... (Thought / Action / Action Input / Observation may repeat)
Thought: I know the answer
Final Answer: the answer to the question""")


@dataclass
class Scratchpad:
    """The agent's transcript so far, as the model sees it."""

    question: str
    lines: list[str] = field(default_factory=list)

    def render(self) -> str:
        return "\n".join([f"Question: {self.question}", *self.lines, "Thought:"])
