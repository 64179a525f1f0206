"""The JSON form: a lossless, versioned round trip."""

from __future__ import annotations

import json

import pytest

from sglc.ir import IRFormatError, IRProgram, program_from_json, program_to_json
from sglc.ir.passes import run_passes


def _roundtrip(prog: IRProgram) -> IRProgram:
    return program_from_json(json.loads(json.dumps(program_to_json(prog))))


def test_round_trip_is_equality_before_passes(example: IRProgram) -> None:
    assert _roundtrip(example) == example


def test_round_trip_is_equality_after_passes(example: IRProgram) -> None:
    prog, _ = run_passes(example)
    back = _roundtrip(prog)
    assert back == prog
    spans = [i.span for fn in prog.functions.values() for _, _, i in fn.instructions()]
    back_spans = [i.span for fn in back.functions.values() for _, _, i in fn.instructions()]
    assert spans == back_spans


def test_other_versions_and_garbage_are_refused(example: IRProgram) -> None:
    data = program_to_json(example)
    with pytest.raises(IRFormatError, match="version"):
        program_from_json({**data, "version": 999})
    with pytest.raises(IRFormatError):
        program_from_json({"format": "something else"})
    with pytest.raises(IRFormatError):
        program_from_json({**data, "functions": {"x": {"name": "x"}}})
