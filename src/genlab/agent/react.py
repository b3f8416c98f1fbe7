"""The ReAct loop (Yao et al. 2022): the model thinks, calls a tool, reads the observation, repeats.

The parser is tolerant: it ignores case, markdown bold, leading spaces and text around the
fields, takes the first Action, reads an Action Input on the same or the next line (quotes
stripped), and prefers an Action over a Final Answer the model wrote in the same turn (it
must see the observation first). A turn with neither is a format error: the model is told
what was wrong and gets another turn. `max_iterations` bounds the turns.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .prompts import REACT_SYSTEM, Scratchpad
from .tools import Tool

_FIELD = r"^[ \t>*_#-]*{name}[ \t*_]*:[ \t*_]*"
_ACTION = re.compile(_FIELD.format(name=r"action(?![ \t]*input)") + r"(.*)$", re.I | re.M)
_INPUT = re.compile(_FIELD.format(name=r"action[ \t]*input") + r"(.*?)(?=^[ \t*_]*(?:observation|thought)[ \t*_]*:|\Z)",
                    re.I | re.M | re.S)
_FINAL = re.compile(_FIELD.format(name=r"final[ \t]*answer") + r"(.*)", re.I | re.M | re.S)


class ParseError(ValueError):
    """The model's turn had neither an Action nor a Final Answer."""


@dataclass
class ReActStep:
    thought: str = ""
    action: str | None = None
    action_input: str = ""
    final_answer: str | None = None
    observation: str | None = None
    raw: str = ""


def _clean(s: str) -> str:
    s = s.strip().strip("*_` ").strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'":
        s = s[1:-1]
    return s.strip()


def parse_react(text: str) -> ReActStep:
    """One model turn -> ReActStep; raises ParseError when it holds neither an action nor an answer."""
    text = text.replace("\r\n", "\n")
    action, final = _ACTION.search(text), _FINAL.search(text)
    first = min((m.start() for m in (action, final) if m), default=len(text))
    thought = re.sub(r"^[ \t*_]*thought[ \t*_]*:", "", text[:first].strip(), flags=re.I)
    step = ReActStep(thought=_clean(thought), raw=text)
    if action:
        name = _clean(action.group(1))
        inline = re.match(r"([\w-]+)\s*[\[(](.*)[\])]\s*$", name)  # "calculator[2+2]" or "search(cats)"
        step.action = (inline.group(1) if inline else name).lower()
        given = _INPUT.search(text, action.end())
        step.action_input = _clean(inline.group(2)) if inline else (_clean(given.group(1)) if given else "")
        return step
    if final:
        step.final_answer = _clean(re.split(r"\n\s*(?:Question|Observation)\s*:", final.group(1))[0])
        return step
    raise ParseError("no 'Action:' and no 'Final Answer:' line")


@dataclass
class AgentResult:
    answer: str | None
    steps: list[ReActStep] = field(default_factory=list)
    stopped: str = "answer"  # "answer" | "max_iterations"

    def transcript(self) -> str:
        out = []
        for s in self.steps:
            if s.thought:
                out.append(f"Thought: {s.thought}")
            if s.action:
                out += [f"Action: {s.action}", f"Action Input: {s.action_input}", f"Observation: {s.observation}"]
            elif s.final_answer is None:
                out.append(f"(unparsed) {s.raw.strip()[:200]}\nObservation: {s.observation}")
        out.append(f"Final Answer: {self.answer}" if self.answer is not None
                   else f"(stopped after {len(self.steps)} turns without an answer)")
        return "\n".join(out)


class Agent:
    def __init__(self, client, tools: list[Tool], max_iterations: int = 6, max_tokens: int = 256,
                 temperature: float = 0.0):
        self.client = client
        self.tools = {t.name.lower(): t for t in tools}
        self.max_iterations = max_iterations
        self.max_tokens = max_tokens
        self.temperature = temperature

    def system_prompt(self) -> str:
        return REACT_SYSTEM.format(tools="\n".join(f"{t.name}: {t.description}" for t in self.tools.values()),
                                   tool_names=", ".join(self.tools))

    def run(self, question: str) -> AgentResult:
        pad = Scratchpad(question)
        result = AgentResult(None)
        for _ in range(self.max_iterations):
            reply = self.client.chat([{"role": "system", "content": self.system_prompt()},
                                      {"role": "user", "content": pad.render()}],
                                     stop=["\nObservation:", "Observation:"], max_tokens=self.max_tokens,
                                     temperature=self.temperature)
            try:
                step = parse_react(reply)
            except ParseError as e:
                step = ReActStep(raw=reply, observation=f"Invalid format: {e}. Reply with 'Action:' and "
                                                        "'Action Input:' lines, or with 'Final Answer:'.")
                result.steps.append(step)
                pad.lines += [reply.strip(), f"Observation: {step.observation}"]
                continue
            result.steps.append(step)
            if step.final_answer is not None:
                result.answer = step.final_answer
                return result
            tool = self.tools.get(step.action)
            step.observation = (tool(step.action_input) if tool is not None else
                                f"there is no tool {step.action!r}; use one of: {', '.join(self.tools)}")
            pad.lines += [f"{step.thought}\nAction: {step.action}\nAction Input: {step.action_input}".strip(),
                          f"Observation: {step.observation}"]
        result.stopped = "max_iterations"
        return result
