"""Shared fixtures for the IR tests: compile SGL source or example files to IR."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sglc.frontend import check_program
from sglc.ir import IRProgram, lower_program

PROGRAMS = sorted((Path(__file__).parent.parent / "frontend" / "programs").glob("*.sgl"))


def _lower(source: str | Path, filename: str | None = None) -> IRProgram:
    checked, diags = check_program(source, filename)
    assert checked.ok, [d.message for d in diags]
    prog, errors = lower_program(checked)
    assert not errors, errors
    return prog


@pytest.fixture
def lower() -> Callable[..., IRProgram]:
    """lower(source, filename="t.sgl") -> the IR before passes."""
    return lambda source, filename="t.sgl": _lower(source, filename)


@pytest.fixture(params=PROGRAMS, ids=lambda p: p.stem)
def example(request: pytest.FixtureRequest) -> IRProgram:
    return _lower(request.param)
