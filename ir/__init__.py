"""The IR of SGL programs: data types, printer, verifier, passes."""

from __future__ import annotations

from sglc.frontend.symbols import CheckedProgram
from sglc.ir.instructions import *  # noqa: F403
from sglc.ir.instructions import __all__ as _instruction_names
from sglc.ir.lower import LoweringError, lower_program
from sglc.ir.passes import run_passes
from sglc.ir.printer import format_instr, print_function, print_program
from sglc.ir.program import FORMAT_VERSION, Block, ExternSig, IRFunction, IRProgram, Param
from sglc.ir.serialize import IRFormatError, program_from_json, program_to_json
from sglc.ir.types import IRType
from sglc.ir.values import ParseError, parse_generated, to_text
from sglc.ir.verify import IRVerifyError, verify
from sglc.source import Diagnostic


def compile_program(checked: CheckedProgram, verify_each: bool = False,
                    skip: tuple[str, ...] = ()) -> tuple[IRProgram, list[Diagnostic]]:
    """Lower a checked program (free of errors) and run the passes; the diagnostics are the
    lowering's errors and the lints' warnings. Raises ValueError if `checked` has errors."""
    if not checked.ok:
        raise ValueError("cannot compile a program with errors; check it first")
    prog, diagnostics = lower_program(checked)
    if any(d.is_error for d in diagnostics):
        return prog, diagnostics
    prog, lints = run_passes(prog, verify=verify_each, skip=skip)
    return prog, diagnostics + lints


__all__ = [
    *_instruction_names, "FORMAT_VERSION", "Block", "ExternSig", "IRFormatError",
    "IRFunction", "IRProgram", "IRType", "IRVerifyError", "LoweringError", "Param", "ParseError",
    "compile_program", "format_instr", "lower_program", "parse_generated", "print_function",
    "print_program", "program_from_json", "program_to_json", "run_passes", "to_text", "verify",
]
