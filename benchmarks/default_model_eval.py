"""Accuracy of the embedded default model per skill, on the held-out split, through the engine.

    python benchmarks/default_model_eval.py [--num 100] [--model PATH]

- react_calculator: the full ReAct loop, for real: the model writes Thought/Action/Input,
  a calculator computes the Observation, the model answers with `Action: finish`.
- json_extraction: the reply must parse as JSON and equal the expected object.
- multiple_choice, yes_no, judge: scored two ways: free greedy generation (exact answer),
  and `select` (the option with the best length-normalized likelihood, via Engine.score —
  what an SGL `select` does).
- instruction, recall, one_sentence: exact match of the greedy reply.
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
from sglc.training.data import SKILLS, generate, prompt_messages

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
                obs = calculator(match.group(2))
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
    return [out.text.strip() == ex.answer for out, ex in zip(outs, examples, strict=True)]


def eval_select(engine: sglc.Engine, examples, options: list[str]) -> list[bool]:
    ok = []
    for ex in examples:
        prompt = engine.tokenizer.apply_chat_template(
            prompt_messages(ex), add_generation_prompt=True, tokenize=False
        )
        scores = engine.score(prompt, options)
        best = max(range(len(options)), key=lambda k: scores[k].normalized)
        ok.append(options[best] == ex.answer)
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num", type=int, default=100, help="held-out examples per skill")
    ap.add_argument("--model", default=None, help="model directory (default: embedded)")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    engine = sglc.Engine(args.model)
    rows = {}
    for skill in SKILLS:
        examples = generate(args.seed, args.num, "heldout", (skill,))
        start = time.perf_counter()
        if skill == "react_calculator":
            ok = {"generate": eval_react(engine, examples)}
        elif skill == "json_extraction":
            ok = {"generate": eval_json(engine, examples)}
        else:
            ok = {"generate": eval_exact(engine, examples)}
        if skill in OPTIONS:
            ok["select"] = eval_select(engine, examples, OPTIONS[skill])
        rows[skill] = {k: sum(v) / len(v) for k, v in ok.items()}
        rows[skill]["seconds"] = time.perf_counter() - start
        print(f"{skill:18s} " + "  ".join(f"{k} {v:6.1%}" for k, v in rows[skill].items()
                                          if k != "seconds"), flush=True)
    engine.shutdown()
    print("\nskill              generate   select   target")
    for skill, r in rows.items():
        target = TARGETS.get(skill)
        sel = f"{r['select']:7.1%}" if "select" in r else "      -"
        print(f"{skill:18s} {r['generate']:7.1%}  {sel}   {f'{target:.0%}' if target else '-'}")
    OUT.mkdir(exist_ok=True)
    (OUT / "default_model_eval.json").write_text(json.dumps(
        {"num_per_skill": args.num, "seed": args.seed, "results": rows, "targets": TARGETS},
        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
