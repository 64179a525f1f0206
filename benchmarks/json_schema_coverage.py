"""JSON-Schema conformance: the official JSON-Schema-Test-Suite (draft 2020-12, vendored under
tests/data/json_schema_test_suite) compiled by sglc and, when installed, outlines-core,
llguidance and xgrammar.

For each system and suite group: does the schema compile, how long it takes (p50/p90 over
the compiled groups), and -- where the system yields something `re` or its own matcher can
check -- soundness (invalid instances accepted, sampled texts that do not validate; see
tests/constraints/schema_suite.py) and how many valid instances are accepted as sglc writes
them. Prints a table, writes JSON (benchmarks/out/json_schema_coverage.json).

    python benchmarks/json_schema_coverage.py [--samples 20] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent / "tests" / "constraints"))
import common  # noqa: E402  (the script runs from any directory)
from schema_suite import Group, check_group, load_groups, sglc_text, spellings  # noqa: E402


def _sglc() -> tuple[Callable[[Any], Any], Callable[[Any, str], bool] | None]:
    from sglc.constraints import regex_for_schema

    return regex_for_schema, None


def _outlines() -> tuple[Callable[[Any], Any], Callable[[Any, str], bool] | None]:
    from outlines_core.json_schema import build_regex_from_schema

    return (lambda schema: build_regex_from_schema(json.dumps(schema), whitespace_pattern="")), None


def _llguidance() -> tuple[Callable[[Any], Any], Callable[[Any, str], bool] | None]:
    import llguidance

    def compile_schema(schema: Any) -> Any:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(json.dumps(schema))
        error = llguidance.LLMatcher.validate_grammar(grammar)  # "" when it compiles
        if error:
            raise ValueError(error)
        return grammar

    return compile_schema, None


def _xgrammar() -> tuple[Callable[[Any], Any], Callable[[Any, str], bool] | None]:
    import xgrammar

    def compile_schema(schema: Any) -> Any:
        return xgrammar.Grammar.from_json_schema(json.dumps(schema))

    return compile_schema, None


SYSTEMS = {"sglc": _sglc, "outlines-core": _outlines, "llguidance": _llguidance,
           "xgrammar": _xgrammar}


def run_system(name: str, groups: list[Group], num_samples: int) -> dict[str, Any] | None:
    try:
        compile_schema, _ = SYSTEMS[name]()
    except ImportError:
        return None
    compiled, times, violations, valid, valid_ok, per_group = 0, [], 0, 0, 0, []
    checks_regex = name in ("sglc", "outlines-core")
    for group in groups:
        start = time.perf_counter()
        try:
            out = compile_schema(group.schema)
        except Exception as exc:  # noqa: BLE001 - each system refuses in its own way
            per_group.append({"group": group.name, "compiled": False, "error": str(exc)[:200]})
            continue
        times.append(time.perf_counter() - start)
        compiled += 1
        row: dict[str, Any] = {"group": group.name, "compiled": True}
        if checks_regex:
            try:
                result = check_group(group, out, num_samples)
            except Exception as exc:  # noqa: BLE001 - e.g. a Rust-only regex construct
                row["check_error"] = str(exc)[:200]
            else:
                violations += len(result.violations)
                valid += result.num_valid
                valid_ok += result.num_valid_accepted
                row.update(violations=result.violations, valid=result.num_valid,
                           valid_accepted=result.num_valid_accepted)
        per_group.append(row)
    return {
        "system": name, "groups": len(groups), "compiled": compiled,
        "compile_p50_ms": _ms(times, 0.5), "compile_p90_ms": _ms(times, 0.9),
        "violations": violations if checks_regex else None,
        "valid_instances": valid if checks_regex else None,
        "valid_accepted": valid_ok if checks_regex else None,
        "per_group": per_group,
    }


def _ms(times: list[float], q: float) -> float | None:
    if not times:
        return None
    if len(times) == 1:
        return times[0] * 1e3
    return statistics.quantiles(times, n=100, method="inclusive")[int(q * 100) - 1] * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20,
                        help="texts sampled from each compiled regex (default 20)")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    groups = load_groups()
    top = [g for g in groups if "/" not in g.path]
    results = []
    for name in args.systems.split(","):
        result = run_system(name, groups, args.samples)
        if result is None:
            print(f"{name}: not installed")
            continue
        top_ok = sum(1 for row, g in zip(result["per_group"], groups, strict=True)
                     if row["compiled"] and "/" not in g.path)
        result["compiled_top_level"] = top_ok
        results.append(result)
    header = (f"{'system':<14}{'compiled':>10}{'top-level':>11}{'p50 ms':>9}{'p90 ms':>9}"
              f"{'violations':>12}{'valid ok':>12}")
    print(f"{len(groups)} groups ({len(top)} in the top-level draft2020-12 files)")
    print(header)
    for r in results:
        def fmt(v: Any, spec: str) -> str:
            return "-" if v is None else format(v, spec)
        valid = ("-" if r["valid_instances"] is None
                 else f"{r['valid_accepted']}/{r['valid_instances']}")
        print(f"{r['system']:<14}{r['compiled']:>6}/{r['groups']:<3}{r['compiled_top_level']:>7}"
              f"/{len(top):<3}{fmt(r['compile_p50_ms'], '.2f'):>9}"
              f"{fmt(r['compile_p90_ms'], '.2f'):>9}{fmt(r['violations'], 'd'):>12}{valid:>12}")
    out = args.out or common.OUT_DIR / "json_schema_coverage.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"groups": len(groups), "top_level_groups": len(top),
                               "samples_per_group": args.samples, "results": results},
                              indent=1, ensure_ascii=False))
    print(f"wrote {out}")


# sglc_text and spellings are what the regex checks use; re-exported for ad-hoc runs
__all__ = ["main", "run_system", "sglc_text", "spellings"]

if __name__ == "__main__":
    main()
