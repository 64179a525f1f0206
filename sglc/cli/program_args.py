"""A fn's arguments from the command line, and the runs' gen defaults.

- `-a key=value` and `--args-json`: keyword arguments, each value parsed by walking its
  parameter's type (`sglc.ir.IRType`): `-a n=3` is an int for `n: int`, a JSON list for
  `xs: list[int]`, one of the choices for `mode: "fast" | "slow"`; checked against the type
  (a schema's fields, bounds) with the words the executor uses at the call boundary.
- `--args-file FILE`: one run per record: a `.jsonl` file holds one JSON object per line,
  a `.json` file one object or a list of them; any other file is text, one run per
  non-empty line, the line being the fn's first parameter. `-a` / `--args-json` go to
  every run.
- `-s key=value`: a gen parameter as a call-level default (`-s temperature=0.7`).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sglc.cli.common import UsageError
from sglc.ir import IRFunction, IRType, Param
from sglc.ir.value_types import describe, value_error
from sglc.lang import GEN_PARAMS
from sglc.lang.types import STR, ListT


def parse_arguments(fn: IRFunction, pairs: list[str], args_json: str | None,
                    schemas: Mapping[str, Any] | None = None,
                    rows: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The keyword arguments of each run: `-a` and `--args-json` for all of them, with each
    of `rows` (from `--args-file`) added; unknown and missing arguments are UsageErrors."""
    params = {p.name: p for p in fn.params}
    shared: dict[str, Any] = {}
    if args_json is not None:
        shared.update(_args_json(args_json))
        for key, value in shared.items():
            _known(key, params)
            check_json_value(key, value, params[key].type, schemas)
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"-a expects KEY=VALUE, got {pair!r}")
        _known(key, params)
        shared[key] = parse_value(key, text, params[key].type, schemas)
    runs = []
    for row in rows if rows is not None else [{}]:
        for key, value in row.items():
            _known(key, params)
            if key in shared:
                raise UsageError(f"argument '{key}' is given both by --args-file and by -a "
                                 "or --args-json")
            check_json_value(key, value, params[key].type, schemas)
        runs.append({**shared, **row})
    for values in runs:
        missing = [p for p in fn.params if p.name not in values and not p.has_default]
        if missing:
            need = " ".join(f"-a {p.name}=<{p.type}>" for p in missing)
            raise UsageError(f"missing argument{'s' * (len(missing) > 1)} for "
                             f"{fn.name.rsplit('.', 1)[-1]}(): {need}")
    return runs


def read_args_file(path: str, fn: IRFunction,
                   schemas: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The runs of an `--args-file`: JSON (an object or a list of them), JSONL (an object a
    line), or text (a line each, bound to the fn's first parameter)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise UsageError(f"--args-file: cannot read {path}: {reason}") from None
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        data = _json(text, f"--args-file {path}")
        rows = data if isinstance(data, list) else [data]
        where = [f"{path}, item {i}" for i in range(len(rows))]
    elif suffix == ".jsonl":
        lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        rows = [_json(line, f"--args-file {path}:{n}") for n, line in lines]
        where = [f"{path}:{n}" for n, _ in lines]
    else:
        if not fn.params:
            raise UsageError(f"--args-file {path}: {fn.name.rsplit('.', 1)[-1]}() takes no "
                             "parameter to bind each line to")
        first = fn.params[0]
        lines = [line for line in text.splitlines() if line.strip()]
        return [{first.name: parse_value(first.name, line, first.type, schemas)}
                for line in lines]
    for row, at in zip(rows, where, strict=True):
        if not isinstance(row, dict):
            raise UsageError(f"--args-file {at}: each run must be a JSON object of arguments, "
                             f"got {json.dumps(row)[:60]}")
    return rows


def parse_defaults(pairs: list[str]) -> dict[str, Any]:
    """`-s key=value` pairs as call-level gen defaults, each checked by its record."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"-s expects KEY=VALUE, got {pair!r}")
        param = GEN_PARAMS.get(key)
        if param is None:
            close = difflib.get_close_matches(key, list(GEN_PARAMS), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else \
                f" (gen parameters: {', '.join(GEN_PARAMS)})"
            raise UsageError(f"-s: unknown gen parameter '{key}'{hint}")
        text_typed = STR in param.types and not text.lstrip().startswith("[")
        value: Any = text if text_typed else _default_value(key, text, ListT(STR) in param.types)
        problem = param.default_error(value)
        if problem is not None:
            raise UsageError(f"-s: {problem}")
        out[key] = value
    return out


def _default_value(key: str, text: str, is_list: bool) -> Any:
    if text in ("None", "null"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        what = "a JSON list" if is_list else "a number, true/false or None"
        raise UsageError(f"-s: {key} must be {what}, got {text!r}") from None


def _args_json(text: str) -> dict[str, Any]:
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--args-json: cannot read {text[1:]}: {exc}") from None
    data = _json(text, "--args-json")
    if not isinstance(data, dict):
        raise UsageError('--args-json must be a JSON object: {"name": value, ...}')
    return data


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where} is not valid JSON: {exc}") from None


def _known(key: str, params: dict[str, Param]) -> None:
    if key not in params:
        close = difflib.get_close_matches(key, list(params), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        names = ", ".join(params) or "none"
        raise UsageError(f"unknown argument '{key}' (parameters: {names}){hint}")


def parse_value(key: str, text: str, t: IRType,
                schemas: Mapping[str, Any] | None = None) -> Any:
    """A command-line string as a value of the parameter type `t`."""
    if t.kind == "optional":
        return None if text in ("None", "null") else parse_value(key, text, t.args[0], schemas)
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
        check_json_value(key, text, t, schemas)
        return text
    if t.kind in _SCALAR_PARSERS:
        value = _SCALAR_PARSERS[t.kind](key, text)
        check_json_value(key, value, t, schemas)
        return value
    if t.kind == "list" and not text.lstrip().startswith("["):
        raise UsageError(
            f"argument '{key}' must be {describe(t)} written as JSON, e.g. {key}='[\"a\", \"b\"]'"
        )
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        what = "written as JSON (a string in quotes)" if t.kind == "json" else \
            f"{describe(t)} written as JSON"
        raise UsageError(f"argument '{key}' must be {what}, got {text!r}") from None
    check_json_value(key, value, t, schemas)
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


def check_json_value(key: str, value: Any, t: IRType,
                     schemas: Mapping[str, Any] | None = None) -> None:
    """A JSON argument must be a value of its parameter type (a schema's fields checked
    when the program's `schemas` are given)."""
    problem = value_error(value, t, schemas or {})
    if problem is not None:
        raise UsageError(f"argument '{key}' {problem}")
