"""`-a key=value` and `--args-json` as a fn's keyword arguments, each value parsed by walking
its parameter's type (`sglc.ir.IRType`): `-a n=3` is an int for `n: int`, a JSON list for
`xs: list[int]`, one of the choices for `mode: "fast" | "slow"`.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sglc.cli.common import UsageError
from sglc.ir import IRFunction, IRType, Param


def parse_arguments(fn: IRFunction, pairs: list[str], args_json: str | None) -> dict[str, Any]:
    """`-a key=value` and `--args-json` as the fn's keyword arguments, each value parsed by
    its parameter's type; unknown and missing arguments are UsageErrors."""
    params = {p.name: p for p in fn.params}
    values: dict[str, Any] = {}
    if args_json is not None:
        values.update(_args_json(args_json))
        for key, value in values.items():
            _known(key, params)
            check_json_value(key, value, params[key].type)
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"-a expects KEY=VALUE, got {pair!r}")
        _known(key, params)
        values[key] = parse_value(key, text, params[key].type)
    missing = [p for p in fn.params if p.name not in values and not p.has_default]
    if missing:
        need = " ".join(f"-a {p.name}=<{p.type}>" for p in missing)
        raise UsageError(
            f"missing argument{'s' * (len(missing) > 1)} for {fn.name.rsplit('.', 1)[-1]}(): {need}"
        )
    return values


def _args_json(text: str) -> dict[str, Any]:
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--args-json: cannot read {text[1:]}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--args-json is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError('--args-json must be a JSON object: {"name": value, ...}')
    return data


def _known(key: str, params: dict[str, Param]) -> None:
    if key not in params:
        close = difflib.get_close_matches(key, list(params), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        names = ", ".join(params) or "none"
        raise UsageError(f"unknown argument '{key}' (parameters: {names}){hint}")


def parse_value(key: str, text: str, t: IRType) -> Any:
    """A command-line string as a value of the parameter type `t`."""
    if t.kind == "optional":
        return None if text in ("None", "null") else parse_value(key, text, t.args[0])
    if t.kind == "None":
        if text in ("None", "null"):
            return None
        raise UsageError(f"argument '{key}' must be None, got {text!r}")
    if t.kind == "choice":
        if text not in t.choices:
            raise UsageError(
                f"argument '{key}' must be one of {', '.join(map(repr, t.choices))}, got {text!r}"
            )
        return text
    if t.kind in ("str", "any"):
        return text
    if t.kind in _SCALAR_PARSERS:
        return _SCALAR_PARSERS[t.kind](key, text)
    if t.kind == "list" and not text.lstrip().startswith("["):
        raise UsageError(
            f"argument '{key}' must be a {t} written as JSON, e.g. {key}='[\"a\", \"b\"]'"
        )
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise UsageError(f"argument '{key}' must be a {t} written as JSON, got {text!r}") from None
    check_json_value(key, value, t)
    return value


def _int(key: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"argument '{key}' must be an int, got {text!r}") from None


def _float(key: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"argument '{key}' must be a float, got {text!r}") from None


def _bool(key: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise UsageError(f"argument '{key}' must be true or false, got {text!r}")


_SCALAR_PARSERS = {"int": _int, "float": _float, "bool": _bool}


def check_json_value(key: str, value: Any, t: IRType) -> None:
    """A JSON argument must have the shape of its parameter type (a schema's: an object)."""
    if not fits(value, t):
        raise UsageError(f"argument '{key}' must be a {t}, got {json.dumps(value)[:60]}")


def fits(value: Any, t: IRType) -> bool:
    """Does a JSON value have the shape of type `t`?"""
    if t.kind in _IS_SCALAR:
        return _IS_SCALAR[t.kind](value)
    if t.kind == "optional":
        return value is None or fits(value, t.args[0])
    if t.kind == "list":
        return isinstance(value, list) and all(fits(v, t.args[0]) for v in value)
    if t.kind == "dict":
        return isinstance(value, dict) and all(fits(v, t.args[1]) for v in value.values())
    if t.kind == "choice":
        return value in t.choices
    return isinstance(value, dict)  # a schema: an object (its fields are not checked)


_IS_SCALAR: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "None": lambda v: v is None,
    "json": lambda v: True,
    "any": lambda v: True,
}
