"""The name/type checker: declarations of a module, then each fn body statement by statement.

Rules a reader may not guess from the grammar:
- names are fn-scoped and must be bound before use in source order; the bodies of `fork`
  and `parallel for` are branches: what they bind stays inside (read it as `b.x`, or as the
  parallel for's result), and assigning an outer variable from a branch is an error;
- a binding may be repeated (a `gen` in a loop, a `let` in both arms of an if) only with
  the same type;
- a line holding a single str expression appends it to the stream; a line of items
  appends each in order (items must be str, gen or select);
- gens and selects are checked in gens.py (parameters, constraints, stop strings).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import singledispatchmethod
from pathlib import Path

from sglc.frontend import ast as A
from sglc.frontend.calls import check_param, constant_of
from sglc.frontend.consts import NotConstant
from sglc.frontend.flow import falls_through, first_role_turn
from sglc.frontend.gens import GenChecker
from sglc.frontend.symbols import BranchT, CheckedProgram, FnSig, ForkT, ModuleInfo, Var
from sglc.frontend.typeexpr import TypeResolver
from sglc.lang import GEN_PARAMS
from sglc.lang.types import (
    BOOL,
    INT,
    JSON,
    NONE,
    STR,
    UNKNOWN,
    ListT,
    Type,
    assignable,
    element_type,
    is_gradual,
    is_str,
    widen,
)
from sglc.source import DiagnosticSink

FORK_JOINS = ("gather", "append")


@dataclass(frozen=True)
class Ctx:
    """Where a statement sits: inside a loop, a branch, a role turn."""

    in_loop: bool = False
    branch: str | None = None  # "fork" or "parallel for" when inside one
    role: str | None = None


class FnChecker(GenChecker):
    """Checks one fn body (the scope starts with its params)."""

    def __init__(self, info: ModuleInfo, sig: FnSig, sink: DiagnosticSink,
                 program: CheckedProgram, resolver: TypeResolver, directory: Path) -> None:
        super().__init__(info, sink, program, resolver, directory)
        self.sig = sig
        self.fork_layers: list[dict[str, Var]] = []  # read later as b.x: warned at the end

    def run(self) -> None:
        fn = self.sig.node
        for p, ps in zip(fn.params, self.sig.params, strict=False):
            self.scope.layers[0][p.name] = Var(p.name, ps.type, p.name_span, "param", True)
        self.fn_defaults(fn)
        for clause in fn.requires:
            self.expect(clause.cond, BOOL, "a requires clause")
        self.block(fn.body, Ctx())
        self.docstring_not_sent(fn)
        if fn.ensures:
            self.result_type = self.sig.returns
            for clause in fn.ensures:
                if self.sig.returns == NONE:
                    self.sink.error("ensures on a fn that returns nothing", clause.span,
                                    "declare a return type (-> str) to constrain `result`",
                                    "spec-misuse")
                self.expect(clause.cond, BOOL, "an ensures clause")
            self.result_type = None
        if self.sig.returns != NONE and falls_through(fn.body):
            self.sink.error(f"fn '{fn.name}' may end without returning a {self.sig.returns}",
                            fn.name_span, "add a return at the end of the body",
                            "missing-return")
        self.warn_unused(self.scope.layers[0])
        for layer in self.fork_layers:
            self.warn_unused(layer)

    def fn_defaults(self, fn: A.FnDef) -> None:
        """`with name=value, ...`: inheritable gen parameters, each a constant."""
        seen: set[str] = set()
        for kw in fn.defaults:
            param = GEN_PARAMS.get(kw.name)
            if param is None or kw.name in seen or not param.inheritable:
                self.check(kw.value)
                if param is None:
                    self.unknown_gen_param(kw)
                elif kw.name in seen:
                    self.sink.error(f"default '{kw.name}' given twice", kw.name_span, None,
                                    "gen-param")
                else:
                    self.sink.error(f"{kw.name} cannot be a default: it changes what a gen "
                                    "gives, so each gen says it", kw.name_span, None,
                                    "gen-param")
            else:
                check_param(self, param, kw)
                try:
                    constant_of(self, kw.value)
                except NotConstant:
                    self.sink.error(f"the default of '{kw.name}' must be a constant",
                                    kw.value.span, "pass values that vary as gen parameters",
                                    "gen-param")
            seen.add(kw.name)

    def docstring_not_sent(self, fn: A.FnDef) -> None:
        """A docstring right before lines that build a raw prompt may have been meant as
        the start of that prompt (a few-shot block): say that it is not sent."""
        if fn.doc is None or fn.doc_span is None or not fn.body:
            return
        first = fn.body[0]
        if isinstance(first, A.ExprStmt) and isinstance(first.expr, A.Str) and \
                first.expr.is_triple:
            return  # a docstring, then the prompt's own block: the remedy of this warning
        literal_line = isinstance(first, A.PromptStmt) or (
            isinstance(first, A.ExprStmt) and isinstance(first.expr, (A.Str, A.Template)))
        if literal_line:
            self.sink.warning(f"this string is the docstring of '{fn.name}': it is not sent "
                              "to the model", fn.doc_span,
                              "to send it, put a docstring line before it, or make it a "
                              'constant (let SHOTS = """...""" at the top level) and write '
                              "SHOTS here", "docstring-not-sent")

    # ---- bindings ------------------------------------------------------------------------

    def warn_unused(self, layer: dict[str, Var]) -> None:
        for var in layer.values():
            if not var.used and not var.name.startswith("_"):
                self.sink.warning(f"unused variable '{var.name}'", var.span,
                                  f"remove it, or name it '_{var.name}' if that is intended",
                                  "unused-variable")

    # ---- statements ----------------------------------------------------------------------

    def block(self, stmts: tuple[A.Stmt, ...], ctx: Ctx) -> None:
        for s in stmts:
            self.stmt(s, ctx)

    @singledispatchmethod
    def stmt(self, s: A.Stmt, ctx: Ctx) -> None:
        raise NotImplementedError(type(s).__name__)

    @stmt.register
    def _(self, s: A.ExprStmt, ctx: Ctx) -> None:
        t = self.check(s.expr)
        if t in (NONE,) or is_str(t) or is_gradual(t):
            return
        self.sink.warning(f"the {t} value of this line is discarded", s.span,
                          'to add it to the prompt, interpolate it: "{x}"', "discarded-value")

    @stmt.register
    def _(self, s: A.PromptStmt, ctx: Ctx) -> None:
        self.items(s.items, ctx)

    def items(self, items: tuple[A.PromptItem, ...], ctx: Ctx) -> None:
        for item in items:
            if isinstance(item, A.Gen):
                self.gen(item, ctx.role)
            elif isinstance(item, A.Select):
                self.select(item)
            else:
                t = self.check(item)
                if not (is_str(t) or is_gradual(t)):
                    self.sink.error(f"a prompt item must be a str, not {t}", item.span,
                                    'interpolate it: "{x}"', "type-mismatch")

    @stmt.register
    def _(self, s: A.Role, ctx: Ctx) -> None:
        self.role_nesting(s.role, s.span, ctx)
        self.items(s.items, Ctx(ctx.in_loop, ctx.branch, s.role))

    @stmt.register
    def _(self, s: A.RoleBlock, ctx: Ctx) -> None:
        self.role_nesting(s.role, s.span, ctx)
        self.block(s.body, Ctx(ctx.in_loop, ctx.branch, s.role))

    def role_nesting(self, role: str, span: A.Span, ctx: Ctx) -> None:
        if ctx.role is not None:
            self.sink.error(f"'{role}' turn inside an '{ctx.role}' turn", span,
                            f"end the {ctx.role} block first (dedent), then start the {role} turn",
                            "role-misuse")

    @stmt.register
    def _(self, s: A.Let, ctx: Ctx) -> None:
        got = self.check(s.value)
        t = widen(got)
        if s.type is not None:
            t = self.resolver.resolve(s.type, self.info)
            if not assignable(got, t):
                self.sink.error(f"'{s.name}' is declared {t} but the value is {got}",
                                s.value.span, self.conversion_hint(got, t), "type-mismatch")
        self.bind(s.name, t, s.name_span, "let")

    @stmt.register
    def _(self, s: A.ParallelFor, ctx: Ctx) -> None:
        iterable = self.check(s.iterable)
        elem = self.iter_elem(iterable, s.iterable)
        self.scope.layers.append({})
        self.bind(s.var, elem, s.var_span, "for").used = True
        *head, last = s.body
        inner = Ctx(False, "parallel for", ctx.role)
        self.block(tuple(head), inner)
        if isinstance(last, A.ExprStmt):
            item = widen(self.check(last.expr))
        else:
            self.stmt(last, inner)
            self.sink.error("the last line of a parallel for body must be an expression: "
                            "the value of each item", last.span,
                            "end the body with the value, e.g. a line holding just `answer`",
                            "parallel-value")
            item = UNKNOWN
        self.warn_unused(self.scope.layers.pop())
        t: Type = ListT(item)
        if s.type is not None:
            declared = self.resolver.resolve(s.type, self.info)
            if not assignable(t, declared):
                self.sink.error(f"'{s.name}' is declared {declared} but the items give {t}",
                                last.span, None, "type-mismatch")
            t = declared
        self.bind(s.name, t, s.name_span, "parallel")

    @stmt.register
    def _(self, s: A.Assign, ctx: Ctx) -> None:
        value = self.check(s.value)
        found = self.scope.lookup(s.name)
        if found is None:
            if s.name in self.info.consts:
                self.sink.error(f"cannot assign to the module constant '{s.name}'",
                                s.name_span, f"bind a new name: let {s.name.lower()} = ...",
                                "const-assign")
                return
            hint = f"declare it first: let {s.name} = ..."
            self.sink.error(f"assignment to undeclared name '{s.name}'", s.name_span, hint,
                            "unknown-name")
            return
        var, depth = found
        if depth < len(self.scope.layers) - 1 and ctx.branch:
            self.sink.error(f"cannot assign to '{s.name}' inside a {ctx.branch} branch",
                            s.name_span, "branches run apart; bind a new name with let and "
                            "read the branches' values after the block", "branch-assign")
        if s.op != "=":
            value = self.binop(s.op[0], var.type, value, s.span)
        if not assignable(value, var.type):
            self.sink.error(f"cannot assign a {value} to '{s.name}', which is {var.type}",
                            s.value.span, self.conversion_hint(value, var.type), "type-mismatch")

    @stmt.register
    def _(self, s: A.If, ctx: Ctx) -> None:
        self.check(s.cond)
        self.block(s.body, ctx)
        self.block(s.orelse, ctx)

    @stmt.register
    def _(self, s: A.For, ctx: Ctx) -> None:
        elem = self.iter_elem(self.check(s.iterable), s.iterable)
        self.bind(s.var, widen(elem), s.var_span, "for")
        self.block(s.body, Ctx(True, ctx.branch, ctx.role))

    def iter_elem(self, t: Type, node: A.Expr) -> Type:
        elem = element_type(t)
        if elem is None:
            self.sink.error(f"cannot iterate over {t}", node.span,
                            "iterate over a list, e.g. range(n)" if t == INT else None,
                            "type-mismatch")
            return UNKNOWN
        return elem

    @stmt.register
    def _(self, s: A.While, ctx: Ctx) -> None:
        self.check(s.cond)
        self.block(s.body, Ctx(True, ctx.branch, ctx.role))

    @stmt.register
    def _(self, s: A.Fork, ctx: Ctx) -> None:
        self.expect(s.count, INT, "the number of branches")
        if isinstance(s.count, A.Int) and s.count.value < 1:
            self.sink.error("a fork needs at least 1 branch", s.count.span, None, "fork-count")
        self.fork_join(s)
        self.scope.layers.append({})
        self.bind(s.name, BranchT(s.name), s.name_span, "branch").used = True
        self.block(s.body, Ctx(False, "fork", ctx.role))
        layer = self.scope.layers.pop()
        layer.pop(s.name, None)
        if "text" in layer:
            self.sink.error(f"a fork body cannot bind 'text': {s.name}.text is the branches' "
                            "texts", layer["text"].span, "choose another name", "fork-join")
        self.bind(s.name, ForkT(s.name, layer), s.name_span, "fork")
        self.fork_layers.append(layer)

    def fork_join(self, s: A.Fork) -> None:
        if s.join is None or s.join_span is None:
            return
        if s.join not in FORK_JOINS:
            self.sink.error(f"unknown join mode '{s.join}'", s.join_span,
                            "join gather (the default: read the values as b.x) or join "
                            "append (each branch's text goes to the stream)", "fork-join")
        elif s.join == "append":
            turn = first_role_turn(s.body)
            if turn is not None:
                self.sink.error("the branches of a fork that joins by append cannot start "
                                "role turns", turn.span, "open the turn around the fork "
                                "instead", "fork-join")

    @stmt.register
    def _(self, s: A.Return, ctx: Ctx) -> None:
        if ctx.branch:
            self.sink.error(f"return inside a {ctx.branch} branch", s.span,
                            "branches end with their block; read their values after it",
                            "branch-return")
        want = self.sig.returns
        if s.value is None:
            if want != NONE:
                self.sink.error(f"return without a value in a fn returning {want}", s.span,
                                None, "type-mismatch")
            return
        if want == NONE:
            got = self.check(s.value)
            self.sink.error(f"fn '{self.sig.name}' declares no return type but returns a value",
                            s.value.span, f"declare it: -> {widen(got)}", "type-mismatch")
            return
        self.expect(s.value, want, "the returned value")

    @stmt.register
    def _(self, s: A.Break, ctx: Ctx) -> None:
        self.loop_only("break", s.span, ctx)

    @stmt.register
    def _(self, s: A.Continue, ctx: Ctx) -> None:
        self.loop_only("continue", s.span, ctx)

    def loop_only(self, word: str, span: A.Span, ctx: Ctx) -> None:
        if not ctx.in_loop:
            where = f" (a {ctx.branch} branch is not a loop)" if ctx.branch else ""
            self.sink.error(f"'{word}' outside a loop{where}", span, None, "loop-misuse")

    @stmt.register
    def _(self, s: A.Pass, ctx: Ctx) -> None:
        return

    @stmt.register
    def _(self, s: A.Requires, ctx: Ctx) -> None:
        self.misplaced_spec("requires", s.span)
        self.expect(s.cond, BOOL, "a requires clause")

    @stmt.register
    def _(self, s: A.Ensures, ctx: Ctx) -> None:
        self.misplaced_spec("ensures", s.span)

    def misplaced_spec(self, word: str, span: A.Span) -> None:
        self.sink.error(f"'{word}' must come at the start of the fn body", span,
                        "put requires/ensures right after the docstring", "spec-misuse")

    @stmt.register
    def _(self, s: A.Assert, ctx: Ctx) -> None:
        self.expect(s.cond, BOOL, "an assert condition")
        if s.message is not None:
            self.expect(s.message, STR, "an assert message")


__all__ = ["FnChecker", "falls_through", "JSON"]
