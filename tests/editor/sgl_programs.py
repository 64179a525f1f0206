"""A hypothesis strategy for SGL programs that parse, written with random layout: spaces
between tokens, indentation widths, blank lines, comments, line breaks inside brackets.

The programs need not type-check (the formatter works on syntax); `layouts` draws one
program and prints it messily, so the formatter's fixed point can be compared with it.
"""

from __future__ import annotations

from hypothesis import strategies as st

NAMES = ["x", "y", "answer", "items", "tools", "n", "_tmp"]
WORD_OPS = {"and", "or", "not", "in", "if", "else", "not in"}

names = st.sampled_from(NAMES)
ints = st.integers(0, 999).map(str)
floats = st.sampled_from(["0.5", "1.0", "2e3", "3.25"])
strings = st.sampled_from(['"hi"', "'x'", '"Q: {x}"', '"a\\nb"', '"{{braces}}"', '"#no comment"',
                           'r"raw\\d"', '"""triple\n  lines"""', '"{items[0]} and {n + 1}"'])
regexes = st.sampled_from(["/[A-Z]+/", "/[0-9]{1,3}/", r"/a\/b/", "/(yes|no)/"])

# An expression is a list of tokens; "\b" marks a place where a line break may go (inside
# brackets only), so the printer can break lines there.
Tokens = list[str]


def _bracketed(open_: str, close: str, items: list[Tokens], trailing: bool) -> Tokens:
    out = [open_]
    for i, item in enumerate(items):
        if i:
            out += [",", "\b"]
        out += item
    if trailing and items:
        out.append(",")
    return [*out, close]


def _extend(children: st.SearchStrategy[Tokens]) -> st.SearchStrategy[Tokens]:
    binop = st.tuples(children, st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "==",
                                                 "!=", "<", ">=", "and", "or", "in", "not in"]),
                      children).map(lambda t: ["(", *t[0], t[1], *t[2], ")"])
    unary = st.tuples(st.sampled_from(["-", "not"]), children).map(
        lambda t: ["(", t[0], "(", *t[1], ")", ")"])
    call = st.tuples(names, st.lists(children, max_size=3),
                     st.lists(st.tuples(names, children), max_size=2), st.booleans()).map(
        lambda t: [t[0], *_bracketed("(", ")", [*t[1], *([k, "=", *v] for k, v in t[2])],
                                     t[3])])
    attr = st.tuples(children, names).map(lambda t: ["(", *t[0], ")", ".", t[1]])
    index = st.tuples(names, children).map(lambda t: [t[0], "[", *t[1], "]"])
    slice_ = st.tuples(names, st.none() | ints, st.none() | ints).map(
        lambda t: [t[0], "[", *([t[1]] if t[1] else []), ":", *([t[2]] if t[2] else []), "]"])
    list_ = st.tuples(st.lists(children, max_size=4), st.booleans()).map(
        lambda t: _bracketed("[", "]", t[0], t[1]))
    dict_ = st.lists(st.tuples(strings, children), max_size=3).map(
        lambda kv: _bracketed("{", "}", [[k, ":", *v] for k, v in kv], False))
    ifexp = st.tuples(children, children, children).map(
        lambda t: ["(", *t[0], "if", *t[1], "else", *t[2], ")"])
    return st.one_of(binop, unary, call, attr, index, slice_, list_, dict_, ifexp)


exprs: st.SearchStrategy[Tokens] = st.recursive(
    st.one_of(names, ints, floats, strings, st.sampled_from(["True", "False", "None"])).map(
        lambda t: [t]),
    _extend, max_leaves=8)

gen_params = st.lists(st.sampled_from([["max_tokens", "=", "8"], ["stop", "=", '"\\n"'],
                                       ["temperature", "=", "0.5"]]), max_size=2,
                      unique_by=lambda p: p[0])
constraints = st.sampled_from([[], [":", "int"], [":", "Person"], [":", '"a"', "|", '"b"'],
                               [":", "list", "[", "str", "]"]]) | regexes.map(lambda r: [":", r])
gens = st.tuples(names, constraints, gen_params).map(
    lambda t: ["gen", t[0], *t[1], *(_bracketed("(", ")", t[2], False) if t[2] else [])])
selects = st.tuples(names, st.lists(strings, min_size=1, max_size=3)).map(
    lambda t: ["select", t[0], "in", *_bracketed("[", "]", [[s] for s in t[1]], False)])
prompt_lines = st.tuples(strings, st.lists(st.one_of(strings.map(lambda s: [s]), gens, selects),
                                           max_size=2)).map(
    lambda t: [t[0], *(tok for item in t[1] for tok in item)])

# A statement: ("simple", tokens) or ("block", header tokens, [statements])
simple_stmts = st.one_of(
    st.tuples(names, exprs).map(lambda t: ["let", t[0], "=", *t[1]]),
    st.tuples(names, exprs).map(lambda t: ["let", t[0], ":", "list", "[", "int", "]", "=",
                                           *t[1]]),
    st.tuples(names, st.sampled_from(["=", "+=", "-="]), exprs).map(
        lambda t: [t[0], t[1], *t[2]]),
    prompt_lines, gens,
    st.tuples(st.sampled_from(["system", "user", "assistant"]), prompt_lines).map(
        lambda t: [t[0], *t[1]]),
    exprs.map(lambda e: ["return", *e]),
    st.sampled_from([["pass"], ["break"], ["continue"], ["return"]]),
    exprs.map(lambda e: ["assert", *e, ",", '"why"']),
    exprs.map(lambda e: ["print", "(", *e, ")"]),
).map(lambda toks: ("simple", toks))


def _blocks(children: st.SearchStrategy) -> st.SearchStrategy:
    bodies = st.lists(children, min_size=1, max_size=3)
    headers = st.one_of(
        exprs.map(lambda e: ["if", *e, ":"]),
        exprs.map(lambda e: ["while", *e, ":"]),
        st.tuples(names, exprs).map(lambda t: ["for", t[0], "in", *t[1], ":"]),
        st.tuples(ints, names).map(lambda t: ["fork", t[0], "as", t[1], ":"]),
        st.sampled_from([["assistant", ":"], ["user", ":"]]),
        st.tuples(names, names, exprs).map(
            lambda t: ["let", t[0], "=", "parallel", "for", t[1], "in", *t[2], ":"]),
    )
    return st.tuples(headers, bodies).map(lambda t: ("block", t[0], t[1]))


statements = st.recursive(simple_stmts, _blocks, max_leaves=6)

params = st.lists(st.tuples(names, st.sampled_from([[":", "str"], [":", "int", "=", "4"],
                                                    [":", "list", "[", "str", "]"]])),
                  max_size=3, unique_by=lambda p: p[0]).map(
    lambda ps: _bracketed("(", ")", [[n, *t] for n, t in ps], False))
fn_defs = st.tuples(names, params, st.sampled_from([[], ["->", "str"], ["->", "int"]]),
                    st.booleans(), st.lists(statements, min_size=1, max_size=4)).map(
    lambda t: ("block", ["fn", t[0], *t[1], *t[2], ":"],
               ([("simple", ['"""The doc."""'])] if t[3] else []) + t[4]))
schemas = st.lists(st.tuples(names, st.sampled_from([["str"], ["int"], ['"a"', "|", '"b"'],
                                                     ["list", "[", "int", "]"]])),
                   min_size=1, max_size=3, unique_by=lambda f: f[0]).map(
    lambda fs: ("block", ["schema", "Person", ":"],
                [("simple", [n, ":", *t]) for n, t in fs]))
top_simple = st.sampled_from([["import", "tools"], ["import", '"lib/x.sgl"', "as", "x"],
                              ["extern", "fn", "search", "(", "q", ":", "str", ")", "->",
                               "str"]]).map(lambda toks: ("simple", toks))
programs = st.lists(st.one_of(fn_defs, schemas, top_simple), min_size=1, max_size=4)


@st.composite
def layouts(draw: st.DrawFn) -> str:
    """One program from `programs`, printed with random (valid) layout."""
    unit = draw(st.sampled_from(["  ", "    ", "   ", "\t"]))
    out: list[str] = []

    def comment() -> str:
        return draw(st.sampled_from(["# note", "#x", "# a # b", "#"]))

    def words(toks: Tokens, indent: str) -> str:
        text, depth = "", 0
        for i, tok in enumerate(toks):
            if tok == "\b":
                if depth and draw(st.integers(0, 3)) == 0:
                    tail = "  " + comment() if draw(st.booleans()) else ""
                    text += tail + "\n" + indent + " " * draw(st.integers(0, 9))
                continue
            if i and text and not text.endswith((" ", "\n")) and not text.endswith("\t"):
                alnum = (text[-1].isalnum() or text[-1] in "_\"'") and (
                    tok[0].isalnum() or tok[0] in "_\"'/")
                word = tok in WORD_OPS or tok.split(" ")[0] in WORD_OPS
                text += " " if alnum or word or tok.startswith("/") or \
                    text.endswith("/") or draw(st.booleans()) else ""
            text += tok
            depth += tok in ("(", "[", "{")
            depth -= tok in (")", "]", "}")
        return text

    def emit(stmt: tuple, depth: int) -> None:
        indent = unit * depth
        for _ in range(draw(st.integers(0, 2)) if draw(st.integers(0, 3)) == 0 else 0):
            out.append("")
        if draw(st.integers(0, 5)) == 0:
            out.append(" " * draw(st.integers(0, 8)) + comment())
        tail = "  " + comment() if draw(st.integers(0, 4)) == 0 else ""
        out.append(indent + words(stmt[1], indent) + tail)
        if stmt[0] == "block":
            for child in stmt[2]:
                emit(child, depth + 1)

    for item in draw(programs):
        emit(item, 0)
    return "\n".join(out) + "\n"
