"""The verify loop with a real checker: the model adds doctest examples to a function, the
examples run (python -m doctest), failures go back to the model, up to 3 attempts.

    python examples/stdlib/doctest_loop.py     # with Dafny installed: checkers.dafny()
"""

from __future__ import annotations

import sglc
from sglc.stdlib.checkers import python_doctest
from sglc.stdlib.loader import load

FUNCTION = "def double(x):\n    return 2 * x\n"


def main(runtime: sglc.Runtime | None = None, **defaults: object) -> dict:
    verify = load("verify").bind(check=python_doctest())
    result = verify.annotate(FUNCTION, "python", runtime=runtime or sglc.Runtime(), **defaults)
    for i, attempt in enumerate(result["attempts"], 1):
        print(f"attempt {i}: {'accepted' if not attempt['errors'] else 'rejected'}")
        print(attempt["program"])
    print("verified:", result["verified"])
    return result


if __name__ == "__main__":
    main()
