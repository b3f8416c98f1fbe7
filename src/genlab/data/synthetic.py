"""Embedded toy data for the toy GANs: points on a curve and patterned numbers.

Everything here is generated from a seed, so the toy recipes need no files
and no network.
"""

from __future__ import annotations

import ast
import math
from typing import Callable

import numpy as np

from ..errors import DataError

# Named curves; "exp" is the book's default y = 1.08^x on x in [0, 50].
NAMED_CURVES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "exp": lambda x: np.power(1.08, x),
    "sin": np.sin,
    "square": lambda x: x ** 2,
}

# The only functions a user expression may call.
SAFE_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "exp": np.exp, "log": np.log,
    "sqrt": np.sqrt, "abs": np.abs, "tanh": np.tanh,
}

_BINOPS = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply,
           ast.Div: np.divide, ast.Pow: np.power}
_UNARYOPS = {ast.USub: np.negative, ast.UAdd: np.positive}


def _check_node(node: ast.AST, expr: str) -> None:
    """Reject any syntax outside the whitelist (walks the whole tree first, so nothing is ever evaluated)."""
    def bad(what: str) -> DataError:
        return DataError(f"unsafe or invalid curve expression {expr!r}: {what} is not allowed "
                         f"(use numbers, x, + - * / **, and {', '.join(sorted(SAFE_FUNCTIONS))})")

    if isinstance(node, ast.Expression):
        _check_node(node.body, expr)
    elif isinstance(node, ast.Constant):
        # bool is a subclass of int; reject it along with strings, bytes, None...
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise bad(f"constant {node.value!r}")
        try:
            if not math.isfinite(float(node.value)):
                raise OverflowError
        except OverflowError:
            raise DataError(f"invalid curve expression: constant {str(node.value)[:20]}... is too large "
                            "for a float") from None
    elif isinstance(node, ast.Name):
        if node.id != "x":
            raise bad(f"name {node.id!r}")
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            raise bad(f"operator {type(node.op).__name__}")
        _check_node(node.left, expr)
        _check_node(node.right, expr)
    elif isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARYOPS:
            raise bad(f"operator {type(node.op).__name__}")
        _check_node(node.operand, expr)
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in SAFE_FUNCTIONS:
            name = node.func.id if isinstance(node.func, ast.Name) else type(node.func).__name__
            raise bad(f"call to {name!r}")
        if node.keywords or len(node.args) != 1:
            raise bad(f"{node.func.id}() with other than one argument")
        _check_node(node.args[0], expr)
    else:
        raise bad(type(node).__name__)


def _eval_node(node: ast.AST, x: np.ndarray) -> np.ndarray:
    """Evaluate an already-checked tree on the array x."""
    if isinstance(node, ast.Expression):
        return _eval_node(node.body, x)
    if isinstance(node, ast.Constant):
        return np.asarray(float(node.value))
    if isinstance(node, ast.Name):
        return x
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_eval_node(node.left, x), _eval_node(node.right, x))
    if isinstance(node, ast.UnaryOp):
        return _UNARYOPS[type(node.op)](_eval_node(node.operand, x))
    if isinstance(node, ast.Call):
        return SAFE_FUNCTIONS[node.func.id](_eval_node(node.args[0], x))  # type: ignore[union-attr]
    raise AssertionError(f"unchecked node {node!r}")  # _check_node makes this unreachable


def make_curve_fn(expr: str) -> Callable[[np.ndarray], np.ndarray]:
    """Return y = f(x) for a named curve ("exp", "sin", "square") or a safe expression in x.

    Expressions are parsed with `ast` and only whitelisted syntax is evaluated,
    never `eval`, so a config file cannot run code.
    """
    if not isinstance(expr, str) or not expr.strip():
        raise DataError(f"invalid curve expression {expr!r}: expected a name or an expression in x")
    key = expr.strip()
    if key in NAMED_CURVES:
        return NAMED_CURVES[key]
    if len(key) > 1000:  # deep nesting can exhaust the parser's recursion
        raise DataError(f"curve expression too long ({len(key)} characters, max 1000)")
    try:
        tree = ast.parse(key, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise DataError(f"invalid curve expression {expr!r}: {type(e).__name__}") from None
    try:
        _check_node(tree, expr)
    except RecursionError:
        raise DataError(f"invalid curve expression {expr!r}: nested too deeply") from None

    def fn(x: np.ndarray) -> np.ndarray:
        xa = np.asarray(x, dtype=np.float64)
        with np.errstate(all="ignore"):  # log(0), overflow... give inf/nan; the caller decides
            y = _eval_node(tree, xa)
        return np.broadcast_to(y, xa.shape).astype(np.float64)

    fn.__doc__ = f"y = {key}"
    return fn


def curve_points(n: int, fn: str = "exp", x_min: float = 0.0, x_max: float = 50.0,
                 seed: int = 0) -> np.ndarray:
    """Sample n points (x, f(x)) with x uniform in [x_min, x_max); returns float32 (n, 2)."""
    if n < 1:
        raise DataError(f"curve_points: n must be >= 1, got {n}")
    if not x_max > x_min:
        raise DataError(f"curve_points: x_max ({x_max}) must be > x_min ({x_min})")
    f = make_curve_fn(fn)
    rng = np.random.default_rng(seed)
    x = rng.uniform(x_min, x_max, size=n)
    y = f(x)
    if not np.all(np.isfinite(y)):
        raise DataError(f"curve expression {fn!r} is not finite on [{x_min}, {x_max}]")
    return np.stack([x, y], axis=1).astype(np.float32)


def valid_values(multiple: int = 5, low: int = 0, high: int = 100) -> np.ndarray:
    """All multiples of `multiple` in [low, high), as int64."""
    if multiple < 1:
        raise DataError(f"multiple must be >= 1, got {multiple}")
    start = -(-low // multiple) * multiple  # first multiple >= low (ceil division)
    values = np.arange(start, high, multiple, dtype=np.int64)
    if values.size == 0:
        raise DataError(f"no multiple of {multiple} in [{low}, {high})")
    return values


def pattern_numbers(n: int, multiple: int = 5, low: int = 0, high: int = 100,
                    seed: int = 0) -> np.ndarray:
    """n numbers drawn uniformly from the multiples of `multiple` in [low, high); int64 (n,)."""
    if n < 1:
        raise DataError(f"pattern_numbers: n must be >= 1, got {n}")
    values = valid_values(multiple, low, high)
    rng = np.random.default_rng(seed)
    return values[rng.integers(0, len(values), size=n)].astype(np.int64)


def one_hot(numbers: np.ndarray, num_classes: int = 100) -> np.ndarray:
    """One-hot encode integers in [0, num_classes); float32 (n, num_classes)."""
    numbers = np.asarray(numbers, dtype=np.int64).reshape(-1)
    if numbers.size and (numbers.min() < 0 or numbers.max() >= num_classes):
        raise DataError(f"one_hot: values must be in [0, {num_classes}), got "
                        f"[{numbers.min()}, {numbers.max()}]")
    out = np.zeros((numbers.size, num_classes), dtype=np.float32)
    out[np.arange(numbers.size), numbers] = 1.0
    return out
