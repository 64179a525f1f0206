"""Module-level checks: imports, duplicate names, schemas, constants, fn signatures, then
fn bodies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sglc.frontend import ast as A
from sglc.frontend.calls import constant_of
from sglc.frontend.checker import FnChecker
from sglc.frontend.consts import NotConstant, constant_value
from sglc.frontend.exprs import ExprTyper
from sglc.frontend.grammars import check_grammar_def
from sglc.frontend.symbols import CheckedProgram, ConstInfo, FnSig, ModuleInfo
from sglc.frontend.typeexpr import TypeResolver
from sglc.lang.signatures import Param
from sglc.lang.types import JSON, NONE, ListT, OptionalT, SchemaInfo, SchemaT, Type, assignable
from sglc.source import DiagnosticSink

LoadImport = Callable[[A.Import], "ModuleInfo | None"]


def check_module(module: A.Module, name: str, load_import: LoadImport, sink: DiagnosticSink,
                 program: CheckedProgram, directory: Path) -> ModuleInfo:
    """Check one parsed file (`directory` holds it: schema files are read from there)."""
    info = ModuleInfo(name, module.file, module)
    seen: dict[str, A.Span] = {}
    resolver = TypeResolver(sink)
    for imp in module.imports:
        if _declare(imp.bound_name, imp.span, seen, sink, "import"):
            info.imports[imp.bound_name] = load_import(imp)
    for schema in module.schemas:
        if _declare(schema.name, schema.name_span, seen, sink, "schema"):
            info.schemas[schema.name] = SchemaInfo(schema.name, doc=schema.doc)
    for schema in module.schemas:
        _schema_fields(schema, info, resolver, sink)
    _recursive_schemas(module, info, sink)
    for grammar in module.grammars:
        if _declare(grammar.name, grammar.name_span, seen, sink, "grammar"):
            info.grammars[grammar.name] = grammar
            check_grammar_def(grammar, sink)
    for const in module.consts:
        if _declare(const.name, const.name_span, seen, sink, "constant"):
            _constant(const, info, resolver, sink, program)
    for fn in module.fns:
        if _declare(fn.name, fn.name_span, seen, sink, "fn"):
            info.fns[fn.name] = _signature(fn, info, resolver, sink, program)
    used: set[str] = set(resolver.used_imports)
    for sig in info.fns.values():
        if not sig.node.is_extern:
            checker = FnChecker(info, sig, sink, program, resolver, directory)
            checker.run()
            used |= checker.used_imports
    _toplevel_statements(module, sink)
    for imp in module.imports:
        if imp.bound_name not in used and info.imports.get(imp.bound_name) is not None:
            sink.warning(f"unused import '{imp.bound_name}'", imp.span, "remove it",
                         "unused-import")
    return info


def _declare(name: str, span: A.Span, seen: dict[str, A.Span], sink: DiagnosticSink,
             kind: str) -> bool:
    if not name.isidentifier():
        sink.error(f"'{name}' is not a valid module name", span,
                   'name it: import "path.sgl" as name', "bad-import")
        return False
    if name in seen:
        sink.error(f"'{name}' is already defined (line {seen[name].line})", span,
                   f"rename this {kind}", "duplicate-name")
        return False
    seen[name] = span
    return True


def _schema_fields(schema: A.SchemaDef, info: ModuleInfo, resolver: TypeResolver,
                   sink: DiagnosticSink) -> None:
    target = info.schemas.get(schema.name)
    if target is None or target.fields:
        return  # a duplicate schema: reported already
    spans: dict[str, A.Span] = {}
    for f in schema.fields:
        t = resolver.resolve(f.type, info)
        if f.name in spans:
            sink.error(f"schema '{schema.name}' has two fields named '{f.name}'", f.name_span,
                       f"the first is on line {spans[f.name].line}", "schema-field")
            continue
        if t == NONE:
            sink.error(f"field '{f.name}' can only be None", f.type.span,
                       "write `T | None` for an optional field", "schema-field")
        spans[f.name] = f.name_span
        target.fields[f.name] = t


def _refs(t: Type) -> list[SchemaInfo]:
    if isinstance(t, SchemaT):
        return [t.info]
    if isinstance(t, (ListT, OptionalT)):
        return _refs(t.elem if isinstance(t, ListT) else t.inner)
    return []


def _recursive_schemas(module: A.Module, info: ModuleInfo, sink: DiagnosticSink) -> None:
    for schema in module.schemas:
        start = info.schemas.get(schema.name)
        stack = [ref for t in (start.fields.values() if start else ()) for ref in _refs(t)]
        seen: set[int] = set()
        while stack:
            ref = stack.pop()
            if ref is start:
                sink.error(f"schema '{schema.name}' contains itself", schema.name_span,
                           "recursive schemas have no finite JSON form; use json for the "
                           "nested part", "schema-recursive")
                break
            if id(ref) not in seen:
                seen.add(id(ref))
                stack.extend(r for t in ref.fields.values() for r in _refs(t))


def _constant(let: A.Let, info: ModuleInfo, resolver: TypeResolver, sink: DiagnosticSink,
              program: CheckedProgram) -> None:
    """`let NAME = <literal>` at the top level: a module constant (a regex constant may be a
    gen constraint)."""
    try:
        value = constant_value(let.value)
    except NotConstant as exc:
        sink.error("a top-level let must be a constant: a literal, or a list or dict of "
                   "literals", exc.node.span, "compute values inside a fn", "not-constant")
        return
    got = ExprTyper(info, sink, program.types, program.constants).check(let.value)
    t = got
    if let.type is not None:
        t = resolver.resolve(let.type, info)
        if not assignable(got, t):
            sink.error(f"'{let.name}' is declared {t} but the value is {got}", let.value.span,
                       None, "type-mismatch")
    info.consts[let.name] = ConstInfo(let.name, t, value, let.name_span)


def _signature(fn: A.FnDef, info: ModuleInfo, resolver: TypeResolver, sink: DiagnosticSink,
               program: CheckedProgram) -> FnSig:
    params: list[Param] = []
    names: set[str] = set()
    defaults_seen = False
    typer = ExprTyper(info, sink, program.types, program.constants)
    for p in fn.params:
        if p.type is None:
            sink.error(f"parameter '{p.name}' needs a type", p.name_span,
                       f"write `{p.name}: str` (or int, float, bool, json, list[T], ...)",
                       "param-type")
            t: Type = JSON
        else:
            t = resolver.resolve(p.type, info)
        if p.name in names:
            sink.error(f"duplicate parameter '{p.name}'", p.name_span, None, "duplicate-name")
        names.add(p.name)
        if p.default is not None:
            defaults_seen = True
            got = typer.check(p.default)
            if not assignable(got, t):
                sink.error(f"default of '{p.name}' must be {t}, not {got}", p.default.span, None,
                           "type-mismatch")
            try:
                constant_of(typer, p.default)
            except NotConstant as exc:
                sink.error(f"the default of '{p.name}' must be a constant", exc.node.span,
                           "a literal, or a top-level constant", "not-constant")
        elif defaults_seen:
            sink.error(f"parameter '{p.name}' without a default follows one with a default",
                       p.name_span, "move parameters with defaults to the end", "param-order")
        params.append(Param(p.name, t, p.default is not None))
    returns = resolver.resolve(fn.returns, info) if fn.returns is not None else NONE
    return FnSig(fn.name, tuple(params), returns, fn, info.name)


def _toplevel_statements(module: A.Module, sink: DiagnosticSink) -> None:
    for s in module.stmts:
        what = "statements"
        if isinstance(s, A.PromptStmt) and any(isinstance(i, A.Gen) for i in s.items):
            what = "gen"
        elif isinstance(s, (A.Role, A.RoleBlock)):
            what = f"a '{s.role}' turn"
        sink.error(f"{what} outside any fn", s.span,
                   "put it in the body of a fn, e.g. `fn main():`", "outside-fn")
