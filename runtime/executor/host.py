"""Host functions for `extern fn`s: bound from Python, loaded from a tools file, or built in.

Lookup order for an extern `tools.calculator`: a binding named `tools.calculator`, then
`calculator`, then a built-in implementation (only `calculator` has one: safe arithmetic on
numbers, so `examples/agent.sgl` runs with no Python tools file).
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import math
import operator
from collections.abc import Callable
from pathlib import Path
from typing import Any


class ToolsFileError(Exception):
    """A `--tools` file that cannot be loaded; the message is for the user."""


def load_tools_file(path: str | Path) -> dict[str, Callable[..., Any]]:
    """The public callables defined in a Python file (names not starting with `_`)."""
    path = Path(path)
    if not path.is_file():
        raise ToolsFileError(f"tools file not found: {path}")
    spec = importlib.util.spec_from_file_location(f"sglc_tools_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ToolsFileError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - any failure of the user's file is reported
        raise ToolsFileError(f"{path}: loading failed: {type(exc).__name__}: {exc}") from None
    return {
        name: fn
        for name, fn in vars(module).items()
        if callable(fn)
        and not name.startswith("_")
        and getattr(fn, "__module__", None) == module.__name__
    }


def resolve_host(
    qualified: str, short: str, bindings: dict[str, Callable[..., Any]]
) -> Callable[..., Any] | None:
    return bindings.get(qualified) or bindings.get(short) or BUILTIN_HOSTS.get(short)


async def call_host(fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Await a coroutine function; run a plain one inline (host functions should be quick;
    a slow one blocks the other branches: make it `async def`)."""
    result = fn(*args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


# -- the built-in calculator ------------------------------------------------------------------
_OPS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_FUNCS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt,
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
}


def calculator(expression: str) -> str:
    """Evaluate arithmetic (`+ - * / // % **`, parentheses, sqrt/abs/round/min/max) safely.
    Returns the result as text ("84", "2.5"); a malformed expression gives an error text
    the model can read, not an exception."""
    try:
        value = _eval(ast.parse(expression.strip().replace("^", "**"), mode="eval").body)
    except ZeroDivisionError:
        return "error: division by zero"
    except (SyntaxError, ValueError, TypeError, OverflowError) as exc:
        return f"error: cannot evaluate {expression!r} ({exc or 'unsupported'})"
    if isinstance(value, float):
        value = float(f"{value:.12g}")  # 2**0.5 * 2**0.5 is 2, not 2.0000000000000004
        if value.is_integer() and abs(value) < 1e15:
            value = int(value)
    return str(value)


def _eval(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 100:
            raise ValueError("exponent too large")
        return _OPS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.operand))
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCS
        and not node.keywords
    ):
        return _FUNCS[node.func.id](*(_eval(a) for a in node.args))
    raise ValueError("only numbers and arithmetic are allowed")


BUILTIN_HOSTS: dict[str, Callable[..., Any]] = {"calculator": calculator}
