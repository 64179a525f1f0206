"""Every construct parses to the expected AST node, with exact spans."""

from __future__ import annotations

import textwrap

import pytest

from sglc.frontend import ast as A
from sglc.frontend import parse_source


def parse(src: str) -> A.Module:
    module, diags = parse_source(textwrap.dedent(src), "t.sgl")
    assert module is not None, diags
    assert not [d for d in diags if d.is_error], diags
    return module


def body(src: str) -> tuple[A.Stmt, ...]:
    """Statements of `fn main():` wrapped around the (indented) source."""
    text = "fn main():\n" + textwrap.indent(textwrap.dedent(src), "    ")
    return parse(text).fns[0].body


def expr(src: str) -> A.Expr:
    (stmt,) = body(f"let v = {src}\n")
    assert isinstance(stmt, A.Let)
    return stmt.value


def test_imports() -> None:
    m = parse('import tools\nimport a.b as c\nimport "lib/x.sgl"\nimport "y.sgl" as why\n')
    names = [(i.module, i.path, i.alias, i.bound_name) for i in m.imports]
    assert names == [("tools", None, None, "tools"), ("a.b", None, "c", "c"),
                     (None, "lib/x.sgl", None, "x"), (None, "y.sgl", "why", "why")]
    assert m.imports[0].span == A.Span("t.sgl", 1, 1, 1, 13)


def test_schema_fields_and_types() -> None:
    m = parse('''
        schema Person:
            """A person."""
            name: str
            city: "Paris" | "Rome"
            email: str | None
            tags: list[str]
            extra: dict[str, int]
            home: geo.Place
    ''')
    (s,) = m.schemas
    assert s.name == "Person" and s.doc == "A person."
    assert [f.name for f in s.fields] == ["name", "city", "email", "tags", "extra", "home"]
    city = s.fields[1].type
    assert isinstance(city, A.TypeUnion)
    assert [o.value for o in city.options] == ["Paris", "Rome"]
    assert isinstance(s.fields[2].type.options[1], A.TypeNone)
    tags = s.fields[3].type
    assert tags.name == "list" and tags.args[0].name == "str"
    assert s.fields[5].type.name == "geo.Place"
    assert s.name_span == A.Span("t.sgl", 2, 8, 2, 14)
    assert s.fields[0].span == A.Span("t.sgl", 4, 5, 4, 14)


def test_extern_and_fn_header() -> None:
    m = parse('''
        extern fn search(query: str) -> str
        fn react(question: str, max_steps: int = 4) -> str:
            """Answer it."""
            requires len(question) > 0
            ensures len(result) <= 200
            return "x"
    ''')
    ext, fn = m.fns
    assert ext.is_extern and ext.name == "search" and ext.body == ()
    assert [p.name for p in fn.params] == ["question", "max_steps"]
    assert isinstance(fn.params[1].default, A.Int) and fn.params[1].default.value == 4
    assert fn.doc == "Answer it."
    assert len(fn.requires) == 1 and len(fn.ensures) == 1
    assert isinstance(fn.body[0], A.Return)
    assert fn.span == A.Span("t.sgl", 3, 1, 7, 15)


def test_role_statements_and_blocks() -> None:
    sys_, usr, blk, inline = body('''
        system "Be brief."
        user "Q: {q}" "!"
        assistant:
            "A: " gen a(max_tokens=4)
        assistant: gen b
    ''')
    assert isinstance(sys_, A.Role) and sys_.role == "system"
    assert isinstance(usr, A.Role) and len(usr.items) == 2
    assert isinstance(blk, A.RoleBlock) and blk.role == "assistant"
    assert isinstance(blk.body[0], A.PromptStmt)
    assert isinstance(inline, A.RoleBlock) and isinstance(inline.body[0].items[0], A.Gen)
    assert blk.span == A.Span("t.sgl", 5, 5, 6, 34)


def test_prompt_line_with_gen_and_select() -> None:
    (line,) = body('"Thought: " gen thought(stop="\\n", max_tokens=64) "\\nAct: " '
                   'select act in ["a", "b"]\n')
    assert isinstance(line, A.PromptStmt)
    text, gen, text2, sel = line.items
    assert text.value == "Thought: " and text2.value == "\nAct: "
    assert gen.name == "thought" and [k.name for k in gen.params] == ["stop", "max_tokens"]
    assert gen.params[0].value.value == "\n"
    assert gen.name_span == A.Span("t.sgl", 2, 21, 2, 28)
    assert isinstance(sel, A.Select) and sel.name == "act"
    assert [o.value for o in sel.options.items] == ["a", "b"]


@pytest.mark.parametrize(("src", "kind"), [
    ("gen x", type(None)),
    ("gen x: int", A.TypeName),
    ("gen x: Person", A.TypeName),
    ("gen x: json", A.TypeName),
    ('gen x: "yes" | "no"', A.TypeUnion),
    ("gen x: /[0-9]+/", A.Regex),
    ("gen x: list[int](max_tokens=8)", A.TypeName),
])
def test_gen_constraints(src: str, kind: type) -> None:
    (line,) = body(src + "\n")
    (gen,) = line.items
    assert isinstance(gen.constraint, kind)


def test_regex_literal_vs_division() -> None:
    (line,) = body("gen x: /a\\/b/\n")
    assert line.items[0].constraint.pattern == "a\\/b"
    e = expr("10 / 2 // 3")
    assert isinstance(e, A.BinOp) and e.op == "//" and e.left.op == "/"
    call = expr("matches(s, /[a-z]+/)")
    assert isinstance(call.args[1], A.Regex)


def test_interpolation_spans() -> None:
    (stmt,) = body('user "Q: {question} and {f(x)[0]}!"\n')
    tmpl = stmt.items[0]
    assert isinstance(tmpl, A.Template)
    assert tmpl.parts[0] == "Q: " and tmpl.parts[2] == " and " and tmpl.parts[4] == "!"
    name, index = tmpl.parts[1], tmpl.parts[3]
    assert name.id == "question" and name.span == A.Span("t.sgl", 2, 15, 2, 23)
    assert isinstance(index, A.Index) and index.span == A.Span("t.sgl", 2, 30, 2, 37)


def test_string_escapes_and_braces() -> None:
    (stmt,) = body(r'''"a\tb {{c}} \u00e9 \x41"''' + "\n")
    assert stmt.expr.value == "a\tb {c} \u00e9 A"
    (raw,) = body('r"{not} \\n"\n')
    assert raw.expr.value == "{not} \\n"


def test_triple_quoted_template_spans_lines() -> None:
    (stmt,) = body('"""line one\n    value: {x}"""\n')
    tmpl = stmt.expr
    assert isinstance(tmpl, A.Template)
    assert tmpl.parts[1].span == A.Span("t.sgl", 3, 17, 3, 18)


def test_let_parallel_fork() -> None:
    let, par, fork = body('''
        let x: int = 3
        let ys = parallel for q in qs:
            user q
            q
        fork 3 as b:
            assistant: gen idea
    ''')
    assert isinstance(let, A.Let) and let.type.name == "int"
    assert isinstance(par, A.ParallelFor) and par.var == "q" and len(par.body) == 2
    assert isinstance(fork, A.Fork) and fork.name == "b" and fork.count.value == 3


def test_control_flow() -> None:
    if_, for_, while_ = body('''
        if a:
            pass
        elif b:
            return 1
        else:
            return
        for i in range(3):
            continue
        while True:
            break
    ''')
    assert isinstance(if_.orelse[0], A.If)
    assert isinstance(if_.orelse[0].orelse[0], A.Return)
    assert if_.orelse[0].orelse[0].value is None
    assert isinstance(for_, A.For) and isinstance(for_.body[0], A.Continue)
    assert isinstance(while_.body[0], A.Break)


def test_assignments_assert_print() -> None:
    assign, aug, assert_, call = body('''
        x = 1
        x += 2
        assert x > 0, "positive"
        print(x, sep=", ")
    ''')
    assert (assign.op, aug.op) == ("=", "+=")
    assert assert_.message.value == "positive"
    assert isinstance(call.expr, A.Call) and call.expr.kwargs[0].name == "sep"


def test_expression_precedence() -> None:
    e = expr("1 + 2 * 3 ** 2")
    assert e.op == "+" and e.right.op == "*" and e.right.right.op == "**"
    e = expr("not a and b or c")
    assert isinstance(e, A.BoolOp) and e.op == "or"
    assert e.values[0].op == "and" and isinstance(e.values[0].values[0], A.UnaryOp)
    e = expr("0 < x <= 10")
    assert isinstance(e, A.Compare) and e.ops == ("<", "<=")
    e = expr("x not in ys")
    assert e.ops == ("not in",)
    e = expr("a if c else b")
    assert isinstance(e, A.IfExp)
    assert isinstance(expr("-x"), A.UnaryOp)


def test_literals_and_postfix() -> None:
    e = expr('[1, 2.5, "s", True, None, {"k": [1]}, {}, []]')
    kinds = [type(i) for i in e.items]
    assert kinds == [A.Int, A.Float, A.Str, A.Bool, A.NoneLit, A.DictLit, A.DictLit, A.ListLit]
    e = expr("a.b(1, k=2)[0][1:2]")
    assert isinstance(e, A.Slice) and isinstance(e.value, A.Index)
    call = e.value.value
    assert isinstance(call.func, A.Attribute) and call.func.attr == "b"
    assert call.func.attr_span == A.Span("t.sgl", 2, 15, 2, 16)


def test_comments_and_blank_lines() -> None:
    m = parse('''
        # heading
        fn main():  # trailing

            # inside
            let x = [1,  # in brackets
                     2]
            print(x)
    ''')
    assert len(m.fns[0].body) == 2


def test_module_docstring_and_toplevel_statements() -> None:
    m = parse('"""Module doc."""\nuser "x"\n')
    assert m.doc == "Module doc."
    assert isinstance(m.stmts[0], A.Role)


def test_syntax_error_gives_no_module() -> None:
    module, diags = parse_source("fn main(\n", "t.sgl")
    assert module is None and diags[0].code == "syntax"
