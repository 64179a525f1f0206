"""stdlib agents: ReAct, tree of thought and self-consistency on the default model
(structure and types) and on scripted models (exact control flow and votes)."""

from __future__ import annotations

import re

from scripted import ScriptedClient

import sglc
from sglc.stdlib.loader import load
from sglc.stdlib.toolbox import toolbox


def test_react_on_the_default_model(runtime):
    agents = load("agents").bind(run_tool=toolbox())
    result = agents.react("What is 12*7?", runtime=runtime)
    steps = result["steps"]
    assert 1 <= len(steps) <= 4
    assert all(s["action"] in ("calculator", "finish") for s in steps)
    assert result["finished"] is (steps[-1]["action"] == "finish")
    for s in steps[:-1] if result["finished"] else steps:
        assert s["observation"]                 # every tool step observed something


def test_tree_of_thought_and_self_consistency_on_the_default_model(runtime):
    agents = load("agents")
    tree = agents.tree_of_thought("What is 17*23?", 2, 2, 1, runtime=runtime, max_tokens=8)
    assert tree["num_scored"] == 4 and 1 <= tree["score"] <= 10
    assert tree["path"].count("Thought: ") == 2
    vote = agents.self_consistency("What is 3+4?", 3, runtime=runtime, max_tokens=8)
    assert vote["num_samples"] == 3 and len(vote["answers"]) == 3
    assert 1 <= vote["votes"] <= 3 and vote["answer"] == vote["answer"].strip()


# -- scripted ----------------------------------------------------------------------------------------
def test_react_loop_observes_tool_results_and_is_bounded():
    calls: list[str] = []

    def double(text: str) -> str:
        calls.append(text)
        return str(2 * int(text))

    def reply(prompt: str, params, i: int) -> str:
        return "21" if prompt.endswith("Input: ") else "I should double."

    finish_after_one = lambda prompt, options: "finish" if "Observation: 42" in prompt else "double"  # noqa: E731
    client = ScriptedClient(reply, finish_after_one)
    agents = load("agents").bind(run_tool=toolbox(double=double))
    result = agents.react("Double 21.", ["double"], runtime=sglc.Runtime(client=client))
    assert result == {"answer": "21", "finished": True, "steps": [
        {"thought": "I should double.", "action": "double", "input": "21", "observation": "42"},
        {"thought": "I should double.", "action": "finish", "input": "21", "observation": ""}]}
    assert calls == ["21"]
    assert "<|im_start|>system\nYou are a helpful assistant. You can use the tools double." \
        in client.prompts[0]
    never = ScriptedClient(reply, lambda prompt, options: "double")
    bounded = agents.react("Double 21.", ["double"], 3, runtime=sglc.Runtime(client=never))
    assert bounded["finished"] is False and len(bounded["steps"]) == 3 and len(calls) == 4


def test_tree_of_thought_keeps_the_best_scored_paths():
    def reply(prompt: str, params, i: int) -> str:
        if prompt.endswith("Answer: "):
            return "42"
        if params.regex is not None:  # the score: 9 for a path whose last thought is idea1
            last = re.findall(r"Thought: (\w+)", prompt.rsplit("Partial solution:", 1)[1])[-1]
            return "9" if last == "idea1" else "3"
        return f"idea{i}"

    agents = load("agents")
    rt = sglc.Runtime(client=ScriptedClient(reply))
    tree = agents.tree_of_thought("Q?", 2, 2, 1, runtime=rt)
    assert tree == {"answer": "42", "path": "Thought: idea1\nThought: idea1\n", "score": 9,
                    "num_scored": 4}
    wider = agents.tree_of_thought("Q?", 2, 2, 2, runtime=rt)
    assert wider["num_scored"] == 2 + 2 * 2 and wider["score"] == 9


def test_self_consistency_majority_vote():
    answers = {0: "7", 1: " 7 ", 2: "8", 3: "Seven", 4: "8"}

    def reply(prompt: str, params, i: int) -> str:
        if "Answer:" in params.stop:
            return f"r{params.seed} Answer:"
        seed = int(re.search(r"r(\d+) Answer: $", prompt).group(1))
        return answers[seed]

    vote = load("agents").self_consistency("3+4?", 5, runtime=sglc.Runtime(
        client=ScriptedClient(reply)))
    # "7" and "8" have two votes each: the first seen wins
    assert vote == {"answer": "7", "votes": 2, "num_samples": 5,
                    "answers": ["7", " 7 ", "8", "Seven", "8"]}


def test_toolbox_reports_unknown_and_failing_tools():
    run = toolbox(boom=lambda s: 1 / 0)
    assert run("calculator", "6*7") == "42"
    assert run("nope", "x").startswith("error: unknown tool 'nope'; tools: boom, calculator")
    assert run("boom", "x") == "error: boom failed: ZeroDivisionError: division by zero"
