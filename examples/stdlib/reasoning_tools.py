"""Host tools for reasoning.sgl: `run_tool` dispatches the agent's actions (--tools file)."""

from sglc.stdlib.toolbox import toolbox

_CAPITALS = {"peru": "Lima", "italy": "Rome", "japan": "Tokyo", "kenya": "Nairobi"}


def _search(query: str) -> str:
    for country, capital in _CAPITALS.items():
        if country in query.lower():
            return f"{capital} is the capital of {country.title()}."
    return "No results."


_run = toolbox(search=_search)


def run_tool(name: str, input: str) -> str:  # noqa: A002 - the extern's parameter name
    return _run(name, input)
