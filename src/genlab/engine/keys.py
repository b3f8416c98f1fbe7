"""Every config key a recipe accepts, with its type, default and a one-line description.

The description of a key is the comment on its line in the config dataclass:

    block_size: int = 128          # context length in tokens

read with `tokenize` from the class's source (a subclass that only changes a default keeps
its base class's description), or `field(metadata={"help": ...})` where a comment will not
do. `genlab keys RECIPE` and `genlab train RECIPE --help` print these rows.
"""
from __future__ import annotations

import dataclasses
import inspect
import io
import textwrap
import tokenize
from dataclasses import dataclass
from typing import Any

from .config import _type_name


@dataclass(frozen=True)
class KeyInfo:
    name: str
    type: str
    default: Any
    description: str


def field_comments(cls: type) -> dict[str, str]:
    """{field name: comment text} for fields of `cls`'s own body that carry a trailing comment."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source (frozen app, interactive class): metadata only
        return {}
    out: dict[str, str] = {}
    body_indent = None
    line_tokens: list[tokenize.TokenInfo] = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.NEWLINE, tokenize.NL):
            _take(line_tokens, body_indent, out)
            line_tokens = []
            continue
        if tok.type == tokenize.INDENT and body_indent is None:
            body_indent = len(tok.string)
        line_tokens.append(tok)
    return out


def _take(tokens: list[tokenize.TokenInfo], body_indent: int | None, out: dict[str, str]) -> None:
    """Record `name: ... # comment` when the line is a field at the class body's indentation."""
    code = [t for t in tokens if t.type not in (tokenize.INDENT, tokenize.DEDENT)]
    if len(code) < 3 or code[0].type != tokenize.NAME or code[1].string != ":" or code[-1].type != tokenize.COMMENT:
        return
    if body_indent is None or code[0].start[1] != body_indent:
        return
    out.setdefault(code[0].string, code[-1].string.lstrip("#").strip())


def describe_config(config_cls: type) -> list[KeyInfo]:
    """One KeyInfo per field of the config dataclass, in declaration order."""
    comments = [field_comments(c) for c in config_cls.__mro__ if dataclasses.is_dataclass(c)]
    hints = _hints(config_cls)
    rows = []
    for f in dataclasses.fields(config_cls):
        text = f.metadata.get("help") or next((c[f.name] for c in comments if f.name in c), "")
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        rows.append(KeyInfo(f.name, _type_name(hints.get(f.name, f.type)), default, text))
    return rows


def _hints(cls: type) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(cls)
    except Exception:  # an annotation that cannot be evaluated: show it as written
        return {}


def format_keys(rows: list[KeyInfo]) -> str:
    """An aligned table: key, type, default, description."""
    shown = [(r.name, r.type, repr(r.default) if isinstance(r.default, str) else str(r.default), r.description)
             for r in rows]
    w = [max(len(row[i]) for row in shown) for i in range(3)]
    return "\n".join(f"  {a:<{w[0]}}  {b:<{w[1]}}  {c:<{w[2]}}  {d}".rstrip() for a, b, c, d in shown)
