"""Spec pushdown (issue 15): spec failures and retries with and without it, on the embedded
default model.

The program asks an arithmetic question and `ensures` the answer is a number, with
`retry 3`. Without pushdown the `ensures` is a run-time check: the model answers in words,
the check fails, the call is re-run up to 3 times, then `SpecViolation`. With pushdown
(the default) the spec is intersected into the gen's constraint, so decoding can only write
a number: the spec is proven and its check leaves the program.

For each mode, N runs (different questions, sampled at temperature 1.0, torch seeded once):
runs whose first attempt failed, spec failures, retries, runs that ended in SpecViolation,
gens made, and wall time. Run `python benchmarks/spec_pushdown.py --help` for the options.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the script runs from any directory)

NAME = "spec_pushdown"
SOURCE = '''
fn answer(q: str) -> str with temperature=1.0, max_tokens=12:
    """The answer to an arithmetic question, as a number."""
    ensures matches(result, /[0-9]+/) retry 3
    user "{q} Reply with a number."
    assistant: gen a
    return a
'''
MODES = {"no pushdown": ("spec_pushdown",), "pushdown": ()}


def run_mode(sglc: Any, runtime: Any, skip: tuple[str, ...], runs: int) -> dict[str, Any]:
    from sglc.runtime.executor import SpecViolation, Trace

    prog = sglc.compile(SOURCE, "answer.sgl", skip_passes=skip)
    checks = sum(1 for fn in prog.ir.functions.values() for _, _, i in fn.instructions()
                 if type(i).__name__ == "AssertSpec")
    out = {"runs": runs, "runtime_checks_in_ir": checks, "first_attempt_failed": 0,
           "spec_failures": 0, "retries": 0, "violations": 0, "gens": 0}
    start = time.perf_counter()
    for k in range(runs):
        trace = Trace()
        try:
            prog.answer(f"What is {k % 10 + 2}*{k // 10 + 3}?", runtime=runtime, trace=trace)
        except SpecViolation:
            out["violations"] += 1
        data = trace.to_json()
        failures = data["num_spec_failures"]
        out["spec_failures"] += failures
        out["first_attempt_failed"] += bool(data["specs"]) and not data["specs"][0]["holds"]
        out["retries"] += data["num_calls"] - 1
        out["gens"] += data["num_calls"]
    out["wall_s"] = round(time.perf_counter() - start, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100, help="runs per mode (default 100)")
    parser.add_argument("--threads", type=int, default=common.NUM_THREADS)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    common.set_threads(args.threads)
    import torch

    import sglc

    torch.manual_seed(0)
    results = {}
    with sglc.Runtime() as runtime:
        for mode, skip in MODES.items():
            results[mode] = run_mode(sglc, runtime, skip, args.runs)
    columns = ["mode", "runtime_checks_in_ir", "first_attempt_failed", "spec_failures",
               "retries", "violations", "gens", "wall_s"]
    print(common.format_table(columns, [[m, *(r[c] for c in columns[1:])]
                                        for m, r in results.items()]))
    path = common.write_json(NAME, {"environment": common.environment(), "runs": args.runs,
                                    "program": SOURCE, "results": results}, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
