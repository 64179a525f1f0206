"""Which name means what: every declaration of a checked program as a `Symbol`, and every
place a name is written as an `Occurrence` of one, for all its modules at once (so a
reference in agent.sgl to `tools.calculator` is the same Symbol as its declaration in
tools.sgl).

Scoping follows the checker (sglc.frontend.checker): names are fn-scoped, bound in source
order; a binding repeated with the same name is the same variable; what a `fork` or
`parallel for` body binds stays in that branch (read as `b.x` after a fork). Types come from
the checker's `CheckedProgram.types`.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass

from sglc.editor.symbols import (
    BUILTIN_SYMBOLS,
    GEN_PARAM_SYMBOLS,
    LOCAL_KINDS,
    ModuleIndex,
    Occurrence,
    ProgramIndex,
    Symbol,
)
from sglc.frontend import CheckedProgram, ModuleInfo
from sglc.frontend import ast as A
from sglc.frontend.symbols import FnT
from sglc.lang.types import UNKNOWN, SchemaT, Type, element_type, widen
from sglc.source import Span


def build_index(program: CheckedProgram) -> ProgramIndex:
    index = ProgramIndex({})
    schema_symbols: dict[int, Symbol] = {}
    for info in program.modules.values():
        index.modules[info.file] = _declarations(info, schema_symbols)
    for info in program.modules.values():
        for fn in info.module.fns:
            sym = index.modules[info.file].fns.get(fn.name)
            if sym is not None and sym.node is fn:
                _BodyWalker(info, index, program.types, schema_symbols, sym).run()
        _ImportWalker(info, index).run()
    for m in index.modules.values():
        m.occurrences.sort(key=lambda o: (o.span.line, o.span.col))
        for occ in m.occurrences:  # a parallel for's list type is known where it is used
            if occ.symbol.type is None and occ.type is not None and \
                    occ.symbol.kind in LOCAL_KINDS:
                occ.symbol.type = occ.type
    return index


def _declarations(info: ModuleInfo, schema_symbols: dict[int, Symbol]) -> ModuleIndex:
    mod = info.module
    m = ModuleIndex(info.file)
    for imp in mod.imports:
        sym = Symbol(imp.bound_name, "import", imp.span, imp.span, node=imp,
                     module=info.imports.get(imp.bound_name))
        m.imports.setdefault(imp.bound_name, sym)
        m.symbols.append(sym)
    for schema in mod.schemas:
        sym = Symbol(schema.name, "schema", schema.name_span, schema.span, node=schema)
        schema_info = info.schemas.get(schema.name)
        if schema_info is not None and schema.name not in m.schemas:
            schema_symbols[id(schema_info)] = sym
            sym.type = SchemaT(schema_info)
        for f in schema.fields:
            t = schema_info.fields.get(f.name) if schema_info else None
            child = Symbol(f.name, "field", f.name_span, f.span, t, f, container=sym)
            sym.children.append(child)
            m.occurrences.append(Occurrence(f.name_span, child, True, t))
        m.schemas.setdefault(schema.name, sym)
        m.symbols.append(sym)
        m.occurrences.append(Occurrence(schema.name_span, sym, True))
    for fn in mod.fns:
        sig = info.fns.get(fn.name)
        sym = Symbol(fn.name, "extern" if fn.is_extern else "fn", fn.name_span, fn.span,
                     FnT(sig) if sig is not None and sig.node is fn else None, fn)
        m.fns.setdefault(fn.name, sym)
        m.symbols.append(sym)
        m.occurrences.append(Occurrence(fn.name_span, sym, True))
    m.symbols.sort(key=lambda s: (s.full or s.span or Span("", 0, 0, 0, 0)).line)
    return m


class _ImportWalker:
    """Import statements: a use of the module they load (go to definition opens it)."""

    def __init__(self, info: ModuleInfo, index: ProgramIndex) -> None:
        self.info, self.m = info, index.modules[info.file]

    def run(self) -> None:
        for imp in self.info.module.imports:
            sym = self.m.imports.get(imp.bound_name)
            if sym is not None and sym.node is imp:
                self.m.occurrences.append(Occurrence(imp.span, sym, True))


class _BodyWalker:
    """One fn: its parameters, the locals its body binds, and every name it uses."""

    def __init__(self, info: ModuleInfo, index: ProgramIndex, types: dict[object, Type],
                 schema_symbols: dict[int, Symbol], fn: Symbol) -> None:
        self.info, self.index, self.types = info, index, types
        self.m = index.modules[info.file]
        self.schema_symbols = schema_symbols
        self.fn = fn
        self.layers: list[dict[str, Symbol]] = [{}]

    def run(self) -> None:
        fn = self.fn.node
        assert isinstance(fn, A.FnDef)
        sig = self.fn.type.sig if isinstance(self.fn.type, FnT) else None
        for i, p in enumerate(fn.params):
            t = sig.params[i].type if sig and i < len(sig.params) else None
            self.bind(p.name, "param", p.name_span, p, t, p.span)
            if p.type is not None:
                self.type_expr(p.type)
            if p.default is not None:
                self.expr(p.default)
        if fn.returns is not None:
            self.type_expr(fn.returns)
        for clause in (*fn.requires, *fn.ensures):
            self.expr(clause.cond)
        self.block(fn.body)

    # ---- bindings --------------------------------------------------------------------------

    def bind(self, name: str, kind: str, span: Span, node: object, t: Type | None,
             full: Span | None = None) -> Symbol:
        layer = self.layers[-1]
        sym = layer.get(name)
        if sym is None:
            sym = Symbol(name, kind, span, full or span, t, node, container=self.fn)
            layer[name] = sym
            self.fn.children.append(sym)
            self.m.occurrences.append(Occurrence(span, sym, True, t))
        else:
            self.m.occurrences.append(Occurrence(span, sym, False, t))
        return sym

    def lookup(self, name: str) -> Symbol | None:
        for layer in reversed(self.layers):
            if name in layer:
                return layer[name]
        return (self.m.fns.get(name) or self.m.imports.get(name) or self.m.schemas.get(name)
                or BUILTIN_SYMBOLS.get(name))

    def use(self, span: Span, sym: Symbol | None, t: Type | None = None) -> None:
        if sym is not None:
            self.m.occurrences.append(Occurrence(span, sym, False, t))

    # ---- statements ------------------------------------------------------------------------

    def block(self, stmts: tuple[A.Stmt, ...]) -> None:
        for s in stmts:
            self.stmt(s)

    def stmt(self, s: A.Stmt) -> None:
        if isinstance(s, A.Let):
            self.expr(s.value)
            if s.type is not None:
                self.type_expr(s.type)
            t = self.types.get(s.value)
            self.bind(s.name, "let", s.name_span, s, widen(t) if t else None, s.span)
        elif isinstance(s, A.ParallelFor):
            self.expr(s.iterable)
            elem = element_type(self.types.get(s.iterable) or UNKNOWN)
            self.layers.append({})
            self.bind(s.var, "for", s.var_span, s, elem)
            self.block(s.body)
            self.layers.pop()
            self.bind(s.name, "parallel", s.name_span, s, None, s.span)
        elif isinstance(s, A.Fork):
            self.expr(s.count)
            self.layers.append({})
            self.block(s.body)
            branch = self.layers.pop()
            sym = self.bind(s.name, "fork", s.name_span, s, None, s.span)
            sym.children = list(branch.values())
        elif isinstance(s, A.For):
            self.expr(s.iterable)
            elem = element_type(self.types.get(s.iterable) or UNKNOWN)
            self.bind(s.var, "for", s.var_span, s, widen(elem) if elem else None)
            self.block(s.body)
        elif isinstance(s, A.Assign):
            self.expr(s.value)
            self.use(s.name_span, self.lookup(s.name))
        elif isinstance(s, (A.PromptStmt, A.Role)):
            self.items(s.items)
        else:
            self.generic(s)

    def items(self, items: tuple[A.PromptItem, ...]) -> None:
        for item in items:
            if isinstance(item, A.Gen):
                for kw in item.params:
                    self.use(kw.name_span, GEN_PARAM_SYMBOLS.get(kw.name))
                    self.expr(kw.value)
                for arg in item.positional:
                    self.expr(arg)
                if item.constraint is not None and not isinstance(item.constraint, A.Regex):
                    self.type_expr(item.constraint)
                self.bind(item.name, "gen", item.name_span, item, self.types.get(item), item.span)
            elif isinstance(item, A.Select):
                self.expr(item.options)
                self.bind(item.name, "select", item.name_span, item, self.types.get(item),
                          item.span)
            else:
                self.expr(item)

    def generic(self, node: object) -> None:
        """Every expression, statement block and type inside `node`, in field order."""
        for f in fields(node):  # type: ignore[arg-type]
            value = getattr(node, f.name)
            for v in value if isinstance(value, tuple) else (value,):
                if isinstance(v, A.TypeName | A.TypeUnion):
                    self.type_expr(v)
                elif _is_stmt(v):
                    self.stmt(v)
                elif is_dataclass(v) and not isinstance(v, Span):
                    self.expr(v)

    # ---- expressions and types -------------------------------------------------------------

    def expr(self, e: object) -> None:
        if isinstance(e, A.Name):
            self.use(e.span, self.lookup(e.id), self.types.get(e))
        elif isinstance(e, A.Attribute):
            self.expr(e.value)
            self.use(e.attr_span, self.member(e), self.types.get(e))
        elif isinstance(e, A.Call):
            self.expr(e.func)
            callee = self.callee(e.func)
            for a in e.args:
                self.expr(a)
            for kw in e.kwargs:
                param = next((c for c in callee.children if c.kind == "param"
                              and c.name == kw.name), None) if callee else None
                self.use(kw.name_span, param)
                self.expr(kw.value)
        elif isinstance(e, A.Template):
            for part in e.parts:
                if not isinstance(part, str):
                    self.expr(part)
        elif isinstance(e, A.Keyword):
            self.expr(e.value)
        elif isinstance(e, A.DictLit):
            for k, v in e.items:
                self.expr(k)
                self.expr(v)
        elif is_dataclass(e):
            self.generic(e)

    def callee(self, func: A.Expr) -> Symbol | None:
        if isinstance(func, A.Name):
            sym = self.lookup(func.id)
        elif isinstance(func, A.Attribute):
            sym = self.member(func)
        else:
            return None
        return sym if sym is not None and sym.kind in ("fn", "extern") else None

    def member(self, e: A.Attribute) -> Symbol | None:
        """The symbol `e.attr` names: a module's fn, a fork's variable, a schema's field."""
        if isinstance(e.value, A.Name):
            base = self.lookup(e.value.id)
            if base is not None and base.kind == "import" and base.module is not None:
                other = self.index.modules.get(base.module.file)
                if other is not None:
                    return other.fns.get(e.attr) or other.schemas.get(e.attr)
            if base is not None and base.kind == "fork":
                return next((c for c in base.children if c.name == e.attr), None)
        t = self.types.get(e.value)
        if isinstance(t, SchemaT):
            schema = self.schema_symbols.get(id(t.info))
            if schema is not None:
                return next((c for c in schema.children if c.name == e.attr), None)
        return None

    def type_expr(self, t: object) -> None:
        if isinstance(t, A.TypeName):
            self.use(t.span if not t.args else _head_span(t), self.type_symbol(t.name))
            for a in t.args:
                self.type_expr(a)
        elif isinstance(t, A.TypeUnion):
            for o in t.options:
                self.type_expr(o)

    def type_symbol(self, name: str) -> Symbol | None:
        if "." not in name:
            return self.m.schemas.get(name)
        mod_name, _, attr = name.rpartition(".")
        imp = self.m.imports.get(mod_name)
        if imp is None or imp.module is None:
            return None
        other = self.index.modules.get(imp.module.file)
        return other.schemas.get(attr) if other else None


def _head_span(t: A.TypeName) -> Span:
    s = t.span
    return Span(s.file, s.line, s.col, s.line, s.col + len(t.name))


def _is_stmt(v: object) -> bool:
    return isinstance(v, A.Stmt)  # the AST's union of statement nodes


__all__ = ["build_index"]
