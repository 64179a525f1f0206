"""Tools for `agents.react`: one host function, `run_tool(name, input)`, that dispatches to
named Python callables.

    from sglc.stdlib.toolbox import toolbox
    prog.bind(run_tool=toolbox(search=my_search))     # calculator included

A tool takes the input text and returns text. An unknown tool name, or a tool that raises,
gives an error text the model reads as its observation (the loop goes on); the model can
only pick listed tools anyway, since `react` selects the action among them.
"""

from __future__ import annotations

from collections.abc import Callable

from sglc.runtime.executor.host import calculator

Tool = Callable[[str], object]


def toolbox(*, include_calculator: bool = True, **tools: Tool) -> Callable[[str, str], str]:
    """A `run_tool(name, input) -> str` over `tools` (plus sglc's safe calculator)."""
    table: dict[str, Tool] = {"calculator": calculator} if include_calculator else {}
    table.update(tools)
    for name, fn in table.items():
        if not callable(fn):
            raise TypeError(f"toolbox({name}=...) needs a callable, got {type(fn).__name__}")

    def run_tool(name: str, input: str) -> str:  # noqa: A002 - the extern's parameter name
        fn = table.get(name)
        if fn is None:
            return f"error: unknown tool {name!r}; tools: {', '.join(sorted(table))}"
        try:
            return str(fn(input))
        except Exception as exc:  # noqa: BLE001 - a failing tool is an observation
            return f"error: {name} failed: {type(exc).__name__}: {exc}"

    return run_tool


__all__ = ["toolbox"]
