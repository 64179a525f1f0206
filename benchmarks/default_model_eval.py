"""Accuracy of the embedded default model per skill, on the held-out split, through the engine.

    python benchmarks/default_model_eval.py [--num 100] [--model PATH]

- react_calculator, react_search: the full ReAct loop, for real: the model writes
  Thought/Action/Input, a calculator (or a search over the world table) computes the
  Observation, the model answers with `Action: finish`.
- json_extraction: the reply must parse as JSON and equal the expected object.
- multiple_choice, yes_no, judge: scored two ways: free greedy generation (the final answer:
  the letter after "The answer is", the verdict), and `select` (the option with the best
  length-normalized likelihood, via Engine.score — what an SGL `select` does; for multiple
  choice and judge after the reasoning sentence, generated greedily up to the answer).
- instruction, recall, one_sentence: exact match of the greedy reply.
- every skill also through SGL programs (column `sgl`), as a user would run them, batched with
  `.batch`: react_calculator with examples/agent.sgl, react_search with the same loop over a
  search tool (the world table), json_extraction as a `json`-constrained gen, the choice
  skills as choice-constrained gens (`gen a: "A" | "B" | ...`, decoded by the engine's
  constrained decoder) after a `gen` of the reasoning sentence for multiple choice and
  judge, the rest as plain gens.
Prints a table and writes benchmarks/out/default_model_eval.json.
"""

from __future__ import annotations

import argparse
import ast
import json
import operator
import re
import sys
import time
from pathlib import Path

import sglc
from sglc.progress import progress
from sglc.training import world
from sglc.training.data import SKILLS, generate, prompt_messages
from sglc.training.skills_facts import MC_ANSWER_PREFIX, final_answer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# Multiple choice and judge replies reason first: the text the options follow.
# (stop the reasoning at, text between the reasoning and " <option>")
REASON_STOP = {"multiple_choice": (MC_ANSWER_PREFIX, " " + MC_ANSWER_PREFIX.rstrip()),
               "judge": ("[[", "")}
# One fn per answer kind, over the conversation before the answer ([[role, text], ...]).
# The replies tokenize with the space on the answer's first token (" [[", " C"); the
# executor's prompt-boundary healing gives it back to them after `why` and the literal.
EVAL_SGL = r"""
extern fn search(query: str) -> str

fn extract(turns: list[list[str]]) -> json:
    for t in turns:
        user "{t[1]}"
    assistant: gen record: json(max_tokens=96)
    return record

fn answer(turns: list[list[str]], kind: str) -> str:
    for t in turns:
        if t[0] == "system":
            system "{t[1]}"
        elif t[0] == "user":
            user "{t[1]}"
        else:
            assistant "{t[1]}"
    if kind == "letter":
        assistant:
            gen why(stop="The answer is", max_tokens=64)
            "The answer is " gen letter: "A" | "B" | "C" | "D"
        return letter
    if kind == "yes_no":
        assistant: gen yes_no: "Yes" | "No"
        return yes_no
    if kind == "verdict":
        assistant:
            gen why(stop="[[", max_tokens=64)
            gen verdict: "[[A]]" | "[[B]]"
        return verdict
    assistant: gen text(max_tokens=96)
    return text

fn react_search(system_text: str, question: str) -> str:
    system "{system_text}"
    user "Question: {question}"
    for _step in range(3):
        assistant:
            "Thought: " gen thought(stop="\n", max_tokens=48)
            "\nAction: " select action in ["calculator", "search", "finish"]
            "\nInput: " gen arg(stop="\n", max_tokens=32)
        if action == "finish":
            return arg
        if action == "search":
            user "Observation: {search(arg)}"
        else:
            user "Observation: error: no calculator in this task"
    return "no answer"
"""
SGL_KIND = {"multiple_choice": "letter", "yes_no": "yes_no",
            "judge": "verdict"}

OUT = Path(__file__).parent / "out"
GREEDY = {"temperature": 0, "max_new_tokens": 96}
OPTIONS = {
    "multiple_choice": ["A", "B", "C", "D"],
    "yes_no": ["Yes", "No"],
    "judge": ["[[A]]", "[[B]]"],
}
TARGETS = {"react_calculator": 0.9, "json_extraction": 0.9, "multiple_choice": 0.8,
           "yes_no": 0.8, "judge": 0.9}
_ACTION = re.compile(r"Action:\s*(\w+)\s*\nInput:\s*(.*)")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def calculator(expression: str) -> str:
    """+, -, * over integers; anything else is an error string (as a tool would return)."""
    def value(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        raise ValueError(expression)

    try:
        return str(value(ast.parse(expression.strip(), mode="eval").body))
    except (SyntaxError, ValueError, RecursionError):
        return "error: cannot compute " + expression


def eval_react(engine: sglc.Engine, examples) -> list[bool]:
    convs = [prompt_messages(ex)[:2] for ex in examples]  # system + question
    answers: list[str | None] = [None] * len(convs)
    for _step in range(3):
        todo = [i for i, a in enumerate(answers) if a is None]
        if not todo:
            break
        outs = engine.generate([convs[i] for i in todo], GREEDY)
        for i, out in zip(todo, outs, strict=True):
            convs[i] = convs[i] + [{"role": "assistant", "content": out.text}]
            match = _ACTION.search(out.text)
            if match is None:
                answers[i] = ""
            elif match.group(1) == "finish":
                answers[i] = match.group(2).strip()
            else:
                tool = search if match.group(1) == "search" else calculator
                obs = tool(match.group(2))
                convs[i] = convs[i] + [{"role": "user", "content": f"Observation: {obs}"}]
    return [a == ex.answer for a, ex in zip(answers, examples, strict=True)]


def eval_json(engine: sglc.Engine, examples) -> list[bool]:
    outs = engine.generate([prompt_messages(ex) for ex in examples], GREEDY)
    ok = []
    for out, ex in zip(outs, examples, strict=True):
        try:
            ok.append(json.loads(out.text) == json.loads(ex.answer))
        except json.JSONDecodeError:
            ok.append(False)
    return ok


def eval_exact(engine: sglc.Engine, examples) -> list[bool]:
    outs = engine.generate([prompt_messages(ex) for ex in examples], GREEDY)
    return [final_answer(ex.skill, out.text) == ex.answer
            for out, ex in zip(outs, examples, strict=True)]


def eval_select(engine: sglc.Engine, examples, options: list[str]) -> list[bool]:
    prompts = [engine.tokenizer.apply_chat_template(
        prompt_messages(ex), add_generation_prompt=True, tokenize=False) for ex in examples]
    if examples and examples[0].skill in REASON_STOP:  # the reasoning, then the options
        stop, lead = REASON_STOP[examples[0].skill]
        outs = engine.generate(prompts, {**GREEDY, "max_new_tokens": 64, "stop": [stop]})
        prompts = [p + out.text.rstrip() + lead for p, out in zip(prompts, outs, strict=True)]
        scored = [" " + o for o in options]
    else:
        scored = options
    ok = []
    for ex, prompt in zip(examples, prompts, strict=True):
        scores = engine.score(prompt, scored)
        best = max(range(len(options)), key=lambda k: scores[k].normalized)
        ok.append(options[best] == ex.answer)
    return ok


def search(query: str) -> str:
    """The search tool of the react_search skill: capitals from the world table."""
    for country, capital in world.CAPITALS.items():
        if country.lower() in query.lower():
            return f"{capital} is the capital of {country}."
    return "No result."


def eval_sgl(runtime: sglc.Runtime, skill: str, examples) -> list[bool]:
    """The skill through an SGL program (see EVAL_SGL), all examples in one `.batch`."""
    if skill == "react_calculator":
        prog = sglc.load(EXAMPLES / "agent.sgl")
        calls = [(ex.messages[1]["content"].removeprefix("Question: "),) for ex in examples]
        answers = prog.batch("react", calls, runtime=runtime)
    elif skill == "react_search":
        prog = sglc.compile(EVAL_SGL, "eval.sgl").bind(search=search)
        calls = [(ex.messages[0]["content"], ex.messages[1]["content"].removeprefix("Question: "))
                 for ex in examples]
        answers = prog.batch("react_search", calls, runtime=runtime)
    else:
        prog = sglc.compile(EVAL_SGL, "eval.sgl")
        turns = [[[m["role"], m["content"]] for m in prompt_messages(ex)] for ex in examples]
        if skill == "json_extraction":  # one user turn
            answers = prog.batch("extract", [(t,) for t in turns], runtime=runtime)
            return [a == json.loads(ex.answer) for a, ex in zip(answers, examples, strict=True)]
        kind = SGL_KIND.get(skill, "text")
        answers = prog.batch("answer", [(t, kind) for t in turns], runtime=runtime)
    return [str(a).strip() == ex.answer for a, ex in zip(answers, examples, strict=True)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num", type=int, default=100, help="held-out examples per skill")
    ap.add_argument("--model", default=None, help="model directory (default: embedded)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--skills", nargs="*", choices=sorted(SKILLS), default=list(SKILLS),
                    help="skills to evaluate (default: all)")
    args = ap.parse_args()
    engine = sglc.Engine(args.model)
    runtime = sglc.Runtime(engine=engine)
    rows = {}
    for skill in progress(args.skills, "skills", unit="skill"):
        examples = generate(args.seed, args.num, "heldout", (skill,))
        start = time.perf_counter()
        if skill in ("react_calculator", "react_search"):
            ok = {"generate": eval_react(engine, examples)}
        elif skill == "json_extraction":
            ok = {"generate": eval_json(engine, examples)}
        else:
            ok = {"generate": eval_exact(engine, examples)}
        if skill in OPTIONS:
            ok["select"] = eval_select(engine, examples, OPTIONS[skill])
        ok["sgl"] = eval_sgl(runtime, skill, examples)
        rows[skill] = {k: sum(v) / len(v) for k, v in ok.items()}
        rows[skill]["seconds"] = time.perf_counter() - start
        print(f"{skill:18s} " + "  ".join(f"{k} {v:6.1%}" for k, v in rows[skill].items()
                                          if k != "seconds"), flush=True)
    engine.shutdown()
    print("\nskill              generate   select      sgl   target")
    for skill, r in rows.items():
        target = TARGETS.get(skill)
        sel = f"{r['select']:7.1%}" if "select" in r else "      -"
        print(f"{skill:18s} {r['generate']:7.1%}  {sel}  {r['sgl']:7.1%}   "
              f"{f'{target:.0%}' if target else '-'}")
    OUT.mkdir(exist_ok=True)
    report = {"num_per_skill": args.num, "seed": args.seed, "results": rows, "targets": TARGETS}
    (OUT / "default_model_eval.json").write_text(json.dumps(report, indent=2))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import common

    common.plot_beside("default_model_eval", report, OUT / "default_model_eval.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
