"""The JSON form of an IRProgram: `program_from_json(program_to_json(p)) == p`, spans included.

    {"format": "sglc-ir", "version": 3, "module": "agent", "entry": "agent.main",
     "schemas": {...}, "externs": {name: sig}, "functions": {name: fn}}

An instruction is `{"opcode": "gen", <its fields>, "span": [file, line, col, end_line, end_col]}`;
an operand is `{"var": name}` or `{"const": value}`; a type (a parameter's, a result's) is
`{"kind": "list", "args": [{"kind": "str"}]}` with its empty fields left out; tuples are lists.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

from sglc.ir import instructions as I
from sglc.ir.program import FORMAT_VERSION, Block, ExternSig, IRFunction, IRProgram, Param
from sglc.ir.types import IRType
from sglc.source import Span

FORMAT_NAME = "sglc-ir"


class IRFormatError(ValueError):
    """JSON that is not a saved IR program of this version."""


def program_to_json(prog: IRProgram) -> dict[str, Any]:
    return {
        "format": FORMAT_NAME, "version": prog.version, "module": prog.module,
        "entry": prog.entry, "schemas": prog.schemas,
        "externs": {name: _sig_json(sig) for name, sig in prog.externs.items()},
        "functions": {name: _fn_json(fn) for name, fn in prog.functions.items()},
    }


def program_from_json(data: dict[str, Any]) -> IRProgram:
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise IRFormatError("not a saved sglc IR program")
    if data.get("version") != FORMAT_VERSION:
        raise IRFormatError(f"it was saved in IR format version {data.get('version')}, and this "
                            f"sglc reads version {FORMAT_VERSION}; compile the program again "
                            "from its .sgl source")
    try:
        return IRProgram(
            {name: _fn(fn) for name, fn in data["functions"].items()}, data["schemas"],
            {name: _sig(sig) for name, sig in data["externs"].items()}, data["entry"],
            data["module"], data["version"])
    except (KeyError, TypeError, ValueError) as exc:
        raise IRFormatError(f"malformed saved IR: {exc!r}") from exc


# ---- encoding ----------------------------------------------------------------------------


def _span(span: Span) -> list[Any]:
    return [span.file, span.line, span.col, span.end_line, span.end_col]


def type_to_json(t: IRType) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": t.kind}
    if t.args:
        data["args"] = [type_to_json(a) for a in t.args]
    if t.choices:
        data["choices"] = list(t.choices)
    if t.name:
        data["name"] = t.name
    for bound in ("min", "max"):
        if getattr(t, bound) is not None:
            data[bound] = getattr(t, bound)
    return data


def _params(params: tuple[Param, ...]) -> list[dict[str, Any]]:
    return [{"name": p.name, "type": type_to_json(p.type), "default": p.default,
             "has_default": p.has_default, "span": _span(p.span)} for p in params]


def _sig_json(sig: ExternSig) -> dict[str, Any]:
    return {"name": sig.name, "params": _params(sig.params), "returns": type_to_json(sig.returns),
            "doc": sig.doc, "span": _span(sig.span)}


def _fn_json(fn: IRFunction) -> dict[str, Any]:
    return {
        "name": fn.name, "params": _params(fn.params), "returns": type_to_json(fn.returns),
        "file": fn.file,
        "doc": fn.doc, "kind": fn.kind, "outputs": list(fn.outputs), "span": _span(fn.span),
        "defaults": [[k, v] for k, v in fn.defaults],
        "blocks": [{"label": b.label, "instrs": [instr_json(i) for i in b.instrs]}
                   for b in fn.blocks],
    }


def instr_json(instr: I.Instr) -> dict[str, Any]:
    out: dict[str, Any] = {"opcode": instr.opname}
    for f in fields(instr):
        if f.name != "span":
            out[f.name] = _encode(getattr(instr, f.name))
    out["span"] = _span(instr.span)
    return out


def _encode(value: Any) -> Any:
    if isinstance(value, I.Var):
        return {"var": value.name}
    if isinstance(value, I.Const):
        return {"const": value.value}
    if isinstance(value, I.Constraint):
        return {f.name: _encode(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, I.Instr):
        return instr_json(value)
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    return value


# ---- decoding ----------------------------------------------------------------------------


def _to_span(data: list[Any]) -> Span:
    return Span(*data)


def type_from_json(data: dict[str, Any]) -> IRType:
    if not isinstance(data, dict):
        raise IRFormatError(f"a type must be an object, got {data!r}")
    return IRType(data["kind"], tuple(type_from_json(a) for a in data.get("args", ())),
                  tuple(data.get("choices", ())), data.get("name", ""), data.get("min"),
                  data.get("max"))


def _to_params(data: list[dict[str, Any]]) -> tuple[Param, ...]:
    return tuple(Param(p["name"], type_from_json(p["type"]), p["default"], p["has_default"],
                       _to_span(p["span"])) for p in data)


def _sig(data: dict[str, Any]) -> ExternSig:
    return ExternSig(data["name"], _to_params(data["params"]), type_from_json(data["returns"]),
                     data["doc"], _to_span(data["span"]))


def _fn(data: dict[str, Any]) -> IRFunction:
    blocks = tuple(Block(b["label"], tuple(instr_from_json(i) for i in b["instrs"]))
                   for b in data["blocks"])
    return IRFunction(data["name"], _to_params(data["params"]), type_from_json(data["returns"]),
                      blocks,
                      data["file"], data["doc"], data["kind"], tuple(data["outputs"]),
                      _to_span(data["span"]), tuple((k, v) for k, v in data["defaults"]))


def instr_from_json(data: dict[str, Any]) -> I.Instr:
    cls = I.INSTRUCTIONS.get(data.get("opcode", ""))
    if cls is None:
        raise IRFormatError(f"unknown instruction {data.get('opcode')!r}")
    kwargs = {f.name: _decode(f.name, data[f.name]) for f in fields(cls)
              if f.name != "span" and (f.name in data or f.default is MISSING)}
    return cls(**kwargs, span=_to_span(data["span"]))


def _decode(name: str, value: Any) -> Any:
    if name == "constraint":
        return I.Constraint(**{k: tuple(v) if isinstance(v, list) else v
                               for k, v in value.items()})
    return _decode_value(value)


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if "var" in value:
            return I.Var(value["var"])
        if "const" in value:
            return I.Const(value["const"])
        if "opcode" in value:
            return instr_from_json(value)
        raise IRFormatError(f"unexpected object {value!r}")
    if isinstance(value, list):
        return tuple(_decode_value(v) for v in value)
    return value


__all__ = ["FORMAT_NAME", "IRFormatError", "instr_from_json", "instr_json", "program_from_json",
           "program_to_json", "type_from_json", "type_to_json"]
