"""The builtin and method tables: every record is known to the checker, verified in the IR
and run by the executor with its implementation (one sample program per record)."""

from __future__ import annotations

import pytest
from model_fixtures import make_model_dir

import sglc
from sglc.frontend import check_program
from sglc.ir import verify
from sglc.lang import BUILTINS, METHODS, ValueOpError
from sglc.runtime.executor.builtins import call_builtin, call_method

# name: (an SGL expression calling it, its value, what it writes)
BUILTIN_SAMPLES: dict[str, tuple[str, object, str]] = {
    "len": ("len([1, 2, 3])", 3, ""),
    "range": ("range(1, 7, 2)", [1, 3, 5], ""),
    "str": ("str(12)", "12", ""),
    "int": ('int(" 42 ")', 42, ""),
    "float": ('float("2.5")', 2.5, ""),
    "bool": ("bool(0)", False, ""),
    "print": ('print("a", 1, sep="-")', None, "a-1\n"),
    "matches": ('matches("123", /[0-9]+/)', True, ""),
    "min": ("min([3, 1, 2])", 1, ""),
    "max": ("max([3, 1, 2])", 3, ""),
    "sum": ("sum([1, 2, 3])", 6, ""),
    "abs": ("abs(-4)", 4, ""),
    "sorted": ('sorted(["b", "a"])', ["a", "b"], ""),
    "list": ('list("ab")', ["a", "b"], ""),
    "text": ("text()", "Hi", ""),
    "messages": ("messages()", [{"role": "user", "content": "Hi"}], ""),
    "meta": ("meta(a).completion_tokens", 2, ""),
    "json.loads": ("json.loads(r'[1, {\"a\": null}]')", [1, {"a": None}], ""),
    "json.dumps": ('json.dumps({"a": [1, "é", True]})', '{"a": [1, "é", true]}', ""),
}
# lines a builtin's sample runs first (the state builtins read the prompt and the gens)
BUILTIN_PRELUDES = {
    "text": '"Hi"',
    "messages": 'user "Hi"',
    "meta": '"Hi" gen a(max_tokens=2, ignore_eos=True)',
}

# (owner, name): (the body of a fn returning json, its value)
METHOD_SAMPLES: dict[tuple[str, str], tuple[str, object]] = {
    ("str", "strip"): ('return " a ".strip()', "a"),
    ("str", "lower"): ('return "Ab".lower()', "ab"),
    ("str", "upper"): ('return "Ab".upper()', "AB"),
    ("str", "split"): ('return "a,b".split(",")', ["a", "b"]),
    ("str", "startswith"): ('return "abc".startswith("ab")', True),
    ("str", "endswith"): ('return "abc".endswith("ab")', False),
    ("str", "replace"): ('return "aXa".replace("X", "-")', "a-a"),
    ("str", "join"): ('return "-".join(["a", "b"])', "a-b"),
    ("str", "find"): ('return "abc".find("c")', 2),
    ("str", "count"): ('return "banana".count("a")', 3),
    ("list", "append"): ("let xs = [1]\n    xs.append(2)\n    return xs", [1, 2]),
    ("list", "pop"): ("let xs = [1, 2]\n    return [xs.pop(0), xs]", [1, [2]]),
    ("list", "extend"): ("let xs = [1]\n    xs.extend([2, 3])\n    return xs", [1, 2, 3]),
    ("list", "index"): ('return ["a", "b"].index("b")', 1),
    ("list", "count"): ("return [1, 2, 1].count(1)", 2),
    ("dict", "get"): ('let d = {"a": 1}\n    return [d.get("a"), d.get("z"), d.get("z", 5)]',
                      [1, None, 5]),
    ("dict", "keys"): ('return {"a": 1, "b": 2}.keys()', ["a", "b"]),
    ("dict", "values"): ('return {"a": 1, "b": 2}.values()', [1, 2]),
}


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    path = tmp_path_factory.mktemp("lang-model")
    make_model_dir(path)
    with sglc.Runtime(model_path=path, max_total_tokens=4096) as rt:
        yield rt


def run(runtime: sglc.Runtime, body: str) -> tuple[object, str]:
    """Check, compile, verify and run `fn f() -> json: <body>`; its value and output."""
    source = f"fn f() -> json:\n    {body}\n"
    _, diags = check_program(source, "t.sgl")
    assert not diags, [d.message for d in diags]
    prog = sglc.compile(source, "t.sgl")
    verify(prog.ir)
    written: list[str] = []
    value = prog.run("f", runtime=runtime, out=written.append)
    return value, "".join(written)


def test_every_builtin_and_method_has_a_sample() -> None:
    assert set(BUILTIN_SAMPLES) == set(BUILTINS)
    assert set(METHOD_SAMPLES) == {(o, n) for o, names in METHODS.items() for n in names}


@pytest.mark.parametrize("name", sorted(BUILTIN_SAMPLES))
def test_every_builtin_checks_and_runs(runtime, name: str) -> None:
    expr, value, output = BUILTIN_SAMPLES[name]
    prelude = f"{BUILTIN_PRELUDES[name]}\n    " if name in BUILTIN_PRELUDES else ""
    assert run(runtime, f"{prelude}return {expr}") == (value, output)


@pytest.mark.parametrize("key", sorted(METHOD_SAMPLES), ids=lambda k: ".".join(k))
def test_every_method_checks_and_runs(runtime, key: tuple[str, str]) -> None:
    body, value = METHOD_SAMPLES[key]
    assert run(runtime, body) == (value, "")


def test_list_of_a_str_checks_and_runs(runtime) -> None:
    assert run(runtime, 'let xs = list("abc")\n    return xs') == (["a", "b", "c"], "")


def test_executor_errors_are_sgl_messages() -> None:
    out: list[str] = []
    with pytest.raises(ValueOpError, match="int\\(\\) cannot read 'x'"):
        call_builtin("int", ["x"], {}, out.append)
    with pytest.raises(ValueOpError, match="min\\(\\): "):
        call_builtin("min", [[]], {}, out.append)
    with pytest.raises(ValueOpError, match="unknown builtin 'nope'"):
        call_builtin("nope", [], {}, out.append)
    with pytest.raises(ValueOpError, match="a int has no method 'strip'"):
        call_method(3, "strip", [])
    with pytest.raises(ValueOpError, match="a list has no method 'keys'"):
        call_method([], "keys", [])
    with pytest.raises(ValueOpError, match="pop\\(\\): pop from empty list"):
        call_method([], "pop", [])
    assert call_builtin("print", ["a", 2], {"end": "!"}, out.append) is None
    assert out == ["a 2!"]
