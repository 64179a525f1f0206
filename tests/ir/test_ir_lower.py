"""Lowering: every example verifies, and the constructs lower to the instructions promised."""

from __future__ import annotations

from sglc.frontend import check_program
from sglc.ir import (
    AssertSpec,
    Call,
    Const,
    Fork,
    Gen,
    HostCall,
    IRFunction,
    IRProgram,
    ParallelMap,
    Pluck,
    Return,
    RoleEnd,
    compile_program,
    verify,
)
from sglc.ir.passes import run_passes


def instrs(fn: IRFunction) -> list:
    return [i for _, _, i in fn.instructions()]


def test_every_example_lowers_and_verifies(example: IRProgram) -> None:
    verify(example)
    assert example.entry is not None and example.entry.endswith(".main")


def test_every_example_survives_all_passes_verified(example: IRProgram) -> None:
    prog, diags = run_passes(example, verify=True)
    assert not any(d.is_error for d in diags)
    assert all(i.regex is not None or i.constraint.kind == "str"
               for fn in prog.functions.values() for i in instrs(fn) if isinstance(i, Gen))


def test_compile_program_from_checked() -> None:
    checked, _ = check_program("fn main():\n    print(1)\n", "m.sgl")
    prog, diags = compile_program(checked, verify_each=True)
    assert prog.entry == "m.main" and diags == []


def test_requires_at_entry_and_ensures_before_each_return(lower) -> None:
    prog = lower('fn f(x: str) -> str:\n    requires len(x) > 0\n    ensures len(result) < 9\n'
                 '    if x == "a":\n        return "b"\n    return x\n')
    fn = prog.functions["t.f"]
    entry = fn.blocks[0].instrs
    assert next(i for i in entry if isinstance(i, AssertSpec)).kind == "requires"
    for block in fn.blocks:
        last = block.instrs[-1]
        if isinstance(last, Return) and last.value is not None:
            spec = [i for i in block.instrs if isinstance(i, AssertSpec)]
            assert spec[-1].kind == "ensures"
            assert spec[-1].message == Const("ensures len(result) < 9")
            assert last.value.name == "result"


def test_fork_body_is_a_function_with_captures_and_outputs(lower) -> None:
    prog = lower('fn f(topic: str, n: int):\n    fork n as b:\n        assistant:\n'
                 '            "{topic}: " gen idea(max_tokens=8)\n    print(b.idea)\n')
    fork = next(i for i in instrs(prog.functions["t.f"]) if isinstance(i, Fork))
    body = prog.functions[fork.body]
    assert body.kind == "fork_body" and fork.captures == ("topic",)
    # issue 23: the branch index `b.index` is the body's first param, then the captures
    assert [p.name for p in body.params] == ["b.index", "topic"] and body.outputs == ("idea",)
    assert any(isinstance(i, Pluck) and i.name == "idea" for i in instrs(prog.functions["t.f"]))


def test_parallel_for_body_takes_item_then_captures(lower) -> None:
    prog = lower('fn f(xs: list[str], k: str) -> list[str]:\n'
                 '    let ys = parallel for x in xs:\n        "{k}{x}" gen y\n        y\n'
                 '    return ys\n')
    pm = next(i for i in instrs(prog.functions["t.f"]) if isinstance(i, ParallelMap))
    body = prog.functions[pm.body]
    assert [p.name for p in body.params] == ["x", "k"] and pm.captures == ("k",)
    assert body.blocks[-1].instrs[-1] == Return(body.blocks[-1].instrs[-1].value)


def test_extern_calls_are_host_calls_and_fn_calls_are_calls(lower) -> None:
    prog = lower('extern fn look(q: str) -> str\nfn g(a: str) -> str:\n    return a\n'
                 'fn main():\n    print(g(look("x")))\n')
    kinds = [type(i) for i in instrs(prog.functions["t.main"])]
    assert HostCall in kinds and Call in kinds
    assert "t.look" in prog.externs and prog.externs["t.look"].name == "look"


def test_break_inside_role_block_closes_the_turn(lower) -> None:
    prog = lower('fn f():\n    while True:\n        assistant:\n            gen x\n'
                 '            if x == "stop":\n                break\n')
    fn = prog.functions["t.f"]
    for block in fn.blocks:
        if block.instrs[-1].opname == "jump" and "while_end" in block.instrs[-1].label \
                and len(block.instrs) > 1:
            assert isinstance(block.instrs[-2], RoleEnd)
            break
    else:
        raise AssertionError("no break block found")


def test_gen_constraints_are_recorded_as_written(lower) -> None:
    prog = lower('schema P:\n    name: str\nfn f():\n    assistant:\n        gen a: int\n'
                 '        gen b: /[0-9]+/\n        gen c: "x" | "y"\n        gen d: P\n'
                 '        gen e: list[int]\n        gen g: json\n    print(a, b, c, d, e, g)\n')
    gens = {i.dest: i for i in instrs(prog.functions["t.f"]) if isinstance(i, Gen)}
    assert gens["a"].constraint.kind == "int" and gens["a"].value_type == "int"
    assert gens["b"].constraint.pattern == "[0-9]+" and gens["b"].value_type == "str"
    assert gens["c"].constraint.choices == ("x", "y")
    assert gens["d"].constraint.schema == "P" and gens["d"].value_type == "json"
    assert gens["e"].constraint.schema == "list[int]"
    assert prog.schemas["list[int]"] == {"type": "array", "items": {"type": "integer"}}
    assert gens["g"].constraint.kind == "json"
    assert prog.schemas["P"]["required"] == ["name"]
