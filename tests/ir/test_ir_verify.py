"""The verifier catches broken programs with a message that says what and where."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from sglc.ir import (
    Block,
    Call,
    Const,
    Constraint,
    Gen,
    IRFunction,
    IRProgram,
    IRVerifyError,
    Jump,
    Return,
    Var,
    verify,
)
from sglc.ir.instructions import Append, Branch, CallBuiltin, CallMethod, Copy


def _prog(*blocks: Block, params=()) -> IRProgram:
    fn = IRFunction("m.f", params, "None", blocks, "m.sgl")
    return IRProgram({"m.f": fn}, {}, {}, "m.f", "m")


def test_a_sound_program_passes() -> None:
    verify(_prog(Block("entry", (Copy("x", Const(1)), Branch(Var("x"), "a", "b"))),
                 Block("a", (Append(Var("x")), Jump("b"))), Block("b", (Return(),))))


def test_missing_label() -> None:
    with pytest.raises(IRVerifyError, match="missing label 'nowhere'"):
        verify(_prog(Block("entry", (Jump("nowhere"),))))


def test_missing_terminator() -> None:
    with pytest.raises(IRVerifyError, match="block entry: does not end in a terminator"):
        verify(_prog(Block("entry", (Copy("x", Const(1)),))))


def test_terminator_in_the_middle() -> None:
    with pytest.raises(IRVerifyError, match="terminator before the end"):
        verify(_prog(Block("entry", (Return(), Copy("x", Const(1)), Return()))))


def test_use_before_def() -> None:
    with pytest.raises(IRVerifyError, match="variable 'y' is used before it is defined"):
        verify(_prog(Block("entry", (Append(Var("y")), Copy("y", Const(1)), Return()))))


def test_use_before_def_across_blocks_but_params_are_defined() -> None:
    from sglc.ir import Param

    ok = _prog(Block("entry", (Append(Var("p")), Return())), params=(Param("p", "str"),))
    verify(ok)
    with pytest.raises(IRVerifyError, match="'z'"):
        verify(_prog(Block("entry", (Jump("b"),)), Block("b", (Append(Var("z")), Return()))))


def test_unknown_function_and_bad_gen_param() -> None:
    with pytest.raises(IRVerifyError, match="unknown function 'm.g'"):
        verify(_prog(Block("entry", (Call(None, "m.g", ()), Return()))))
    gen = Gen("x", Constraint("str"), "str", None, (("warmth", Const(1)),))
    with pytest.raises(IRVerifyError, match="gen has no parameter 'warmth'"):
        verify(_prog(Block("entry", (gen, Return()))))


def test_broken_lowered_program_is_caught(example: IRProgram) -> None:
    name = example.entry
    fn = example.functions[name]
    broken = replace(fn, blocks=(replace(fn.blocks[0], instrs=fn.blocks[0].instrs[:-1]),
                                 *fn.blocks[1:]))
    with pytest.raises(IRVerifyError, match="terminator"):
        verify(example.replace_function(broken))


def test_builtin_and_method_calls_follow_the_lang_tables() -> None:
    sound = (CallBuiltin("n", "len", (Const("ab"),)),
             CallBuiltin(None, "print", (Const(1), Const(2)), (("sep", Const("")),)),
             CallBuiltin("r", "range", (Const(1), Const(5))),
             CallMethod("u", Const("a"), "upper", ()), Return())
    verify(_prog(Block("entry", sound)))
    for instr, message in [
        (CallBuiltin("n", "lenn", ()), "unknown builtin 'lenn'"),
        (CallBuiltin("n", "len", (Const(1), Const(2))), "'len' takes at most 1 argument, got 2"),
        (CallBuiltin("n", "range", ()), "'range' takes at least 1 argument, got 0"),
        (CallBuiltin("n", "len", (), (("value", Const(1)),)), "'len' takes at least 1"),
        (CallBuiltin("n", "print", (), (("value", Const(1)),)),
         "'print' has no keyword parameter 'value'"),
        (CallMethod("n", Const("a"), "uper", ()), "unknown method 'uper'"),
    ]:
        with pytest.raises(IRVerifyError, match=re.escape(message)):
            verify(_prog(Block("entry", (instr, Return()))))
