"""The official JSON-Schema-Test-Suite (draft 2020-12): every schema sglc compiles yields a
regex that accepts no invalid instance (in any key order or escaping) and whose sampled texts
all validate (jsonschema, formats asserted); every schema it refuses is refused with a JSON
pointer. The number of groups compiled is pinned from below."""

from __future__ import annotations

import pytest
from schema_suite import check_group, load_groups

from sglc.constraints import ConstraintError, regex_for_schema

GROUPS = load_groups()
MIN_COMPILED = 296  # of 413 groups; benchmarks/json_schema_coverage.py prints the table


@pytest.mark.parametrize("group", GROUPS, ids=[g.name[:70] for g in GROUPS])
def test_suite_group_is_sound_or_refused_with_a_pointer(group) -> None:
    try:
        regex = regex_for_schema(group.schema)
    except ConstraintError as exc:
        assert exc.pointer is not None and (exc.pointer == "" or exc.pointer.startswith("/"))
        return
    result = check_group(group, regex, num_samples=8)
    assert not result.violations, result.violations


def test_suite_coverage_floor() -> None:
    compiled = 0
    for group in GROUPS:
        try:
            regex_for_schema(group.schema)
        except ConstraintError:
            continue
        compiled += 1
    assert len(GROUPS) == 413
    assert compiled >= MIN_COMPILED
