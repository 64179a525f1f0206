"""Each pass alone: folding, prefix sharing, lints (constraints: test_ir_constraints.py)."""

from __future__ import annotations

from sglc.ir import (
    Append,
    Block,
    Const,
    IRFunction,
    IRProgram,
    Prefetch,
    Return,
    RoleBegin,
    Var,
    print_function,
    verify,
)
from sglc.ir.passes import fold_text, lint, share_prefixes
from sglc.ir.passes.fold_text import fold_instrs


def _prefetches(fn: IRFunction) -> list[Prefetch]:
    return [i for _, _, i in fn.instructions() if isinstance(i, Prefetch)]


def test_folding_merges_adjacent_constant_appends_only() -> None:
    instrs = (Append(Const("a")), Append(Const("b")), Append(Var("x")), Append(Const("c")),
              Append(Const(1)), RoleBegin("user"), Append(Const("d")), Return())
    assert fold_instrs(instrs) == (Append(Const("ab")), Append(Var("x")), Append(Const("c1")),
                                   RoleBegin("user"), Append(Const("d")), Return())


def test_folding_a_lowered_program(lower) -> None:
    prog = fold_text(lower('fn f(x: str):\n    "a" "b{x}c" "d"\n    "e"\n'))
    verify(prog)
    appends = [i.value for _, _, i in prog.functions["t.f"].instructions()
               if isinstance(i, Append)]
    assert appends == [Const("ab"), Var("x"), Const("cde")]


def test_prefix_sharing_before_a_fork(lower) -> None:
    prog = share_prefixes(fold_text(lower(
        'fn f():\n    user "Go"\n    fork 3 as b:\n        assistant:\n'
        '            "Step 1: " "then " gen s\n    print(b.s)\n')))
    verify(prog)
    fn = prog.functions["t.f"]
    [prefetch] = _prefetches(fn)
    assert not prefetch.fresh
    assert prefetch.prefix == (RoleBegin("assistant"), Append(Const("Step 1: then ")))
    ops = [i.opname for _, _, i in fn.instructions()]
    assert ops.index("prefetch") == ops.index("fork") - 1


def test_prefix_sharing_before_a_parallel_for(lower) -> None:
    prog = share_prefixes(lower(
        'fn f(qs: list[str]) -> list[str]:\n    "Examples\\n"\n'
        '    let out = parallel for q in qs:\n        "Q: {q}\\nA: " gen a\n        a\n'
        '    return out\n'))
    verify(prog)
    [prefetch] = _prefetches(prog.functions["t.f"])
    assert prefetch.prefix == (Append(Const("Q: ")),) and not prefetch.fresh


def test_batched_calls_prefetch_the_callee_head_fresh(lower) -> None:
    prog = share_prefixes(lower(
        'fn ask(q: str) -> str:\n    requires len(q) > 0\n    system "Sys"\n'
        '    user "Q: {q}"\n    assistant: gen a\n    return a\n'
        'fn main():\n    let qs = ["a", "b"]\n    let rs = parallel for q in qs:\n'
        '        ask(q)\n    print(rs)\n'))
    verify(prog)
    [prefetch] = _prefetches(prog.functions["t.main"])
    assert prefetch.fresh
    assert [i.opname for i in prefetch.prefix] == ["role_begin", "append", "role_end",
                                                   "role_begin", "append"]
    assert prefetch.prefix[1] == Append(Const("Sys")) and prefetch.prefix[4] == Append(Const("Q: "))


def test_calls_in_loops_get_their_prefetch_hoisted_out(lower) -> None:
    prog = share_prefixes(lower(
        'fn ask(q: str) -> str:\n    system "Sys"\n    user q\n    assistant: gen a\n'
        '    return a\nfn main():\n    for i in range(3):\n        for j in range(2):\n'
        '            print(ask("q"))\n'))
    verify(prog)
    fn = prog.functions["t.main"]
    [prefetch] = _prefetches(fn)
    assert prefetch.fresh and fn.blocks[0].instrs[-2] == prefetch, print_function(fn)


def test_lints_report_unused_values_and_unreachable_code(lower) -> None:
    prog = lower('fn f() -> int:\n    let x = 1\n    let _y = 2\n    assistant: gen g\n'
                 '    return 3\n    print("never")\n')
    diags = lint(prog)
    assert [(d.code, d.span.line) for d in diags] == [("unused-value", 2),
                                                      ("unreachable-code", 6)]
    assert "'x'" in diags[0].message and all(d.severity == "warning" for d in diags)


def test_lints_are_quiet_on_the_examples(example: IRProgram) -> None:
    assert lint(example) == []


def test_passes_keep_hand_built_programs_verified() -> None:
    fn = IRFunction("m.f", (), "None", (Block("entry", (Append(Const("a")), Return())),), "m")
    prog = IRProgram({"m.f": fn}, {}, {}, None, "m")
    for transform in (fold_text, share_prefixes):
        verify(transform(prog))
