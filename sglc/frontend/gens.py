"""Checking `gen` and `select`: their parameters (the records of sglc.lang), the gen's
constraint (a type, a bounded type, `json[T]`, a regex literal or a module's regex constant,
a `schema(...)` reference, a `grammar(...)` reference) and the stop strings that could cut a
constrained gen short.

The type a gen binds: its constraint's type (str without one), or a list of them with `n=`.
"""

from __future__ import annotations

import json
from pathlib import Path

from sglc.constraints import Constraint, ConstraintError, to_regex
from sglc.constraints.grammar import route_schema
from sglc.frontend import ast as A
from sglc.frontend.calls import check_param, constant_of
from sglc.frontend.consts import NotConstant, constant_value
from sglc.frontend.exprs import ExprTyper
from sglc.frontend.grammars import grammar_of
from sglc.frontend.regexes import (
    check_regex,
    constraint_regex,
    stop_example,
    typed_constraint,
)
from sglc.frontend.symbols import CheckedProgram, ConstInfo, ModuleInfo, Var, suggest
from sglc.frontend.typeexpr import TypeResolver
from sglc.lang import GEN_PARAMS, SELECT_PARAMS
from sglc.lang.types import (
    JSON,
    NONE,
    REGEX,
    STR,
    UNKNOWN,
    ListT,
    LiteralT,
    OptionalT,
    Type,
    assignable,
    is_gradual,
)
from sglc.source import DiagnosticSink, Span


class GenChecker(ExprTyper):
    """The gen and select part of a fn's checker (and the bindings they make)."""

    def __init__(self, info: ModuleInfo, sink: DiagnosticSink, program: CheckedProgram,
                 resolver: TypeResolver, directory: Path) -> None:
        super().__init__(info, sink, program.types, program.constants)
        self.program = program
        self.resolver = resolver
        self.directory = directory

    def bind(self, name: str, t: Type, span: A.Span, kind: str) -> Var:
        layer = self.scope.layers[-1]
        old = layer.get(name)
        if old is not None:
            if not (assignable(t, old.type) or is_gradual(old.type)):
                self.sink.error(f"'{name}' is already {old.type} (line {old.span.line}); "
                                f"cannot rebind it as {t}", span,
                                "use a new name", "rebind-type")
            return old
        var = Var(name, t, span, kind, used=kind != "let")
        layer[name] = var
        return var

    def unknown_gen_param(self, kw: A.Keyword) -> None:
        self.sink.error(f"gen has no parameter '{kw.name}'", kw.name_span,
                        suggest(kw.name, GEN_PARAMS) or
                        f"parameters: {', '.join(GEN_PARAMS)}", "gen-param")

    # ---- gen -----------------------------------------------------------------------------

    def gen(self, g: A.Gen, role: str | None) -> None:
        if role in ("user", "system"):
            self.sink.warning(f"gen inside a {role} turn: the model writes the "
                              f"{role}'s text", g.span, "generate in an assistant turn",
                              "role-misuse")
        self.positional(g.positional, "gen")
        seen: set[str] = set()
        for kw in g.params:
            param = GEN_PARAMS.get(kw.name)
            if param is None:
                self.check(kw.value)
                self.unknown_gen_param(kw)
            elif kw.name in seen:
                self.check(kw.value)
                self.sink.error(f"gen parameter '{kw.name}' given twice", kw.name_span, None,
                                "gen-param")
            else:
                check_param(self, param, kw)
            seen.add(kw.name)
        t, regex = self.constraint(g.constraint)
        self.types[g] = t
        samples = "n" in seen
        var = self.bind(g.name, ListT(t) if samples else t, g.name_span, "gen")
        var.samples = samples
        stop = next((kw for kw in g.params if kw.name == "stop"), None)
        if stop is not None and regex is not None and g.constraint is not None:
            self.stops_inside(stop, regex, g.constraint)

    def positional(self, args: tuple[A.Expr, ...], what: str) -> None:
        for arg in args:
            self.check(arg)
            self.sink.error(f"{what} parameters are keywords", arg.span,
                            "name it, e.g. max_tokens=64" if what == "gen" else
                            "name it, e.g. temperature=0.5", "gen-param")

    def constraint(self, c: A.Constraint | None) -> tuple[Type, str | None]:
        """The type a constraint gives, and its canonical regex (None: any text, or not
        known after an error)."""
        if c is None:
            return STR, None
        if isinstance(c, A.Regex):
            return STR, (c.pattern if check_regex(c, self.sink) else None)
        if isinstance(c, A.GrammarRef):
            grammar_of(c, self.info, self.directory, self.sink, self.program)
            return STR, None
        if isinstance(c, A.SchemaRef):
            schema = self.schema_ref(c)
            if schema is None:
                return JSON, None
            return JSON, self.schema_regex(json.dumps(schema), c.span)
        const = self.regex_constant(c)
        if const is not None:
            return STR, (str(const.value) if const.type == REGEX else None)
        t = self.resolver.resolve(c, self.info)
        if t == NONE or isinstance(t, OptionalT):
            self.sink.error("a gen constraint cannot be None", c.span,
                            "constrain to a value type: str, int, a schema, json, ...",
                            "bad-constraint")
            return UNKNOWN, None
        if t == UNKNOWN:
            return t, None
        json_form = isinstance(c, A.TypeName) and c.name == "json" and bool(c.args)
        return t, constraint_regex(typed_constraint(t, json_form), c.span, self.sink)

    def schema_regex(self, schema: str, span: Span) -> str | None:
        """The regex of a `schema(...)`; None when it takes the grammar path (recorded, with
        the regex path's refusal, for `sglc check`) or after an error."""
        try:
            route = route_schema(schema)
        except ConstraintError:
            return self.regex_of(Constraint("schema", schema=schema), span)  # reports it
        if route.grammar is not None:
            self.program.grammar_path_schemas.append((span, str(route.refusal)))
        return route.regex

    def regex_of(self, c: Constraint, span: Span) -> str | None:
        try:
            return to_regex(c)
        except ConstraintError as exc:
            where = "" if exc.pointer is None else f" (at {exc.pointer or 'the schema root'})"
            self.sink.error(f"this schema has no regex: {exc.message}{where}", span, exc.hint,
                            "bad-constraint")
            return None

    def regex_constant(self, c: A.TypeExpr) -> ConstInfo | None:
        """A constraint written as the name of a module constant (`gen n: INT`,
        `gen d: regexes.DATE`): it must be a regex."""
        if not isinstance(c, A.TypeName) or c.args or c.bounds:
            return None
        mod_name, _, name = c.name.rpartition(".")
        mod = self.info.imports.get(mod_name) if mod_name else self.info
        const = mod.consts.get(name) if mod is not None else None
        if const is None:
            return None
        if mod_name:
            self.used_imports.add(mod_name)
        self.constants[c] = const
        if const.type != REGEX:
            self.sink.error(f"'{c.name}' is a constant of type {const.type}, not a constraint",
                            c.span, "a constraint is a type, a regex /.../ or a regex constant",
                            "bad-constraint")
        return const

    def schema_ref(self, c: A.SchemaRef) -> dict | None:
        """`schema("file.json")` (read next to the program, inside its folder) or
        `schema({...})`: the JSON schema, recorded for lowering."""
        source = c.source
        self.check(source)
        if isinstance(source, A.Str):
            schema = self.schema_file(source)
        else:
            try:
                schema = constant_value(source)
            except NotConstant:
                schema = None
            if not isinstance(schema, (dict, bool)):
                self.sink.error("schema(...) takes a file name or a JSON schema written as a "
                                "dict literal", source.span,
                                'e.g. schema("person.json") or schema({"type": "integer"})',
                                "bad-schema")
                return None
        if schema is not None:
            self.program.json_schemas[c] = schema
        return schema

    def schema_file(self, source: A.Str) -> dict | None:
        path = (self.directory / source.value).resolve()
        if Path(source.value).is_absolute() or not path.is_relative_to(self.directory.resolve()):
            self.sink.error("a schema file must be inside the program's folder", source.span,
                            "give a path relative to the .sgl file, without '..'", "bad-schema")
            return None
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            self.sink.error(f"cannot read schema file '{source.value}': {reason}", source.span,
                            "paths are relative to the folder of the .sgl file", "bad-schema")
            return None
        try:
            schema = json.loads(text)
        except json.JSONDecodeError as exc:
            self.sink.error(f"schema file '{source.value}' is not JSON: {exc.msg} (line "
                            f"{exc.lineno}, column {exc.colno})", source.span, None,
                            "bad-schema")
            return None
        if not isinstance(schema, (dict, bool)):
            self.sink.error(f"schema file '{source.value}' holds no JSON schema (an object)",
                            source.span, None, "bad-schema")
            return None
        return schema

    def stops_inside(self, stop: A.Keyword, regex: str, c: A.Constraint) -> None:
        """Warn when a text of the constraint contains a stop string: the engine would end
        the gen there, before its value is complete."""
        try:
            value = constant_of(self, stop.value)
        except NotConstant:
            return
        for text in [value] if isinstance(value, str) else list(value or ()):
            example = stop_example(regex, text) if isinstance(text, str) else None
            if example is not None:
                self.sink.warning(f"the stop string {json.dumps(text)} can occur inside "
                                  f"this gen's constraint (e.g. {json.dumps(example)}): it "
                                  "would end the gen before its value is complete",
                                  stop.span, "drop the stop string: a constrained gen ends "
                                  "when its constraint is complete", "stop-in-constraint")

    # ---- select ----------------------------------------------------------------------------

    def select(self, s: A.Select) -> None:
        self.positional(s.positional, "select")
        seen: set[str] = set()
        for kw in s.params:
            param = SELECT_PARAMS.get(kw.name)
            if param is None or kw.name in seen:
                self.check(kw.value)
                message = f"select has no parameter '{kw.name}'" if param is None else \
                    f"select parameter '{kw.name}' given twice"
                hint = None if param is not None else suggest(kw.name, SELECT_PARAMS) or \
                    f"parameters: {', '.join(SELECT_PARAMS)}"
                self.sink.error(message, kw.name_span, hint, "gen-param")
            else:
                check_param(self, param, kw, "select")
            seen.add(kw.name)
        t = self.check(s.options)
        result: Type = STR
        if isinstance(s.options, A.ListLit):
            values = [i.value for i in s.options.items if isinstance(i, A.Str)]
            if not s.options.items:
                self.sink.error("select needs at least one option", s.options.span, None,
                                "select-options")
            if len(values) == len(s.options.items) and values:
                result = LiteralT(tuple(dict.fromkeys(values)))
                if len(set(values)) < len(values):
                    self.sink.warning("select has duplicate options", s.options.span, None,
                                      "select-options")
        elif isinstance(t, ListT) and isinstance(t.elem, LiteralT):
            result = t.elem  # a module constant list of strings
        if not assignable(t, ListT(STR)):
            self.sink.error(f"select options must be a list[str], not {t}", s.options.span,
                            None, "select-options")
        self.types[s] = result
        self.bind(s.name, result, s.name_span, "select")


__all__ = ["GenChecker"]
