"""A quick greedy check of a trained model on held-out examples (not the real evaluation).

`python -m sglc.training.sanity DIR [--per-skill N]` prints each prompt's greedy reply and a
per-skill exact-match count. ReAct examples run the tool loop for real: the model's
calculator input is evaluated and fed back as the observation.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path

import torch

from sglc.runtime.models.loader import load_model_dir
from sglc.training.data import SKILLS, generate, prompt_messages
from sglc.training.skills import Example

_BINARY = re.compile(r"^\s*(-?\d+)\s*([-+*])\s*(-?\d+)\s*$")


def calculator(expression: str) -> str:
    """The value of `a op b` for integers, or an error text like a real tool would give."""
    match = _BINARY.match(expression)
    if match is None:
        return "error: cannot parse"
    a, op, b = int(match[1]), match[2], int(match[3])
    return str(a + b if op == "+" else a - b if op == "-" else a * b)


class GreedyChat:
    """Greedy replies from a model directory, through our model's `forward_dense`."""

    def __init__(self, model_dir: str | Path) -> None:
        loaded = load_model_dir(model_dir, dtype="float32")
        self.model, self.tokenizer = loaded.model, loaded.tokenizer
        self.eos_ids = loaded.eos_token_ids

    @torch.no_grad()
    def reply(self, messages: Sequence[dict[str, str]], max_new_tokens: int = 48) -> str:
        text = self.tokenizer.apply_chat_template(list(messages), add_generation_prompt=True,
                                                  tokenize=False)
        ids = self.tokenizer(text, add_special_tokens=False).input_ids
        new: list[int] = []
        for _ in range(max_new_tokens):
            logits = self.model.forward_dense(torch.tensor([ids + new]))[0, -1]
            token = int(logits.argmax())
            if token in self.eos_ids:
                break
            new.append(token)
        return self.tokenizer.decode(new, skip_special_tokens=True)


def _field(text: str, name: str) -> str | None:
    match = re.search(rf"^{name}: ?(.*)$", text, re.MULTILINE)
    return match[1].strip() if match else None


def run_react(chat: GreedyChat, example: Example) -> tuple[str, list[str]]:
    """Run the tool loop (at most 3 model turns); returns (final answer or "", transcript)."""
    messages = list(example.messages[:2])
    transcript = []
    for _ in range(3):
        turn = chat.reply(messages)
        transcript.append(turn)
        action, tool_input = _field(turn, "Action"), _field(turn, "Input") or ""
        if action == "finish":
            return tool_input, transcript
        observation = calculator(tool_input) if action == "calculator" else (
            f"{example.answer} is the capital of {tool_input.removeprefix('capital of ')}.")
        messages += [{"role": "assistant", "content": turn},
                     {"role": "user", "content": f"Observation: {observation}"}]
        transcript.append(f"Observation: {observation}")
    return "", transcript


def is_correct(example: Example, output: str) -> bool:
    """Exact match, or equal JSON objects for extraction."""
    if example.skill != "json_extraction":
        return output.strip() == example.answer
    try:
        return json.loads(output) == json.loads(example.answer)
    except json.JSONDecodeError:
        return False


def check(model_dir: str | Path, per_skill: int, seed: int = 1234, show: int = 2) -> dict[str, float]:
    """Greedy accuracy per skill on `per_skill` held-out examples each; prints samples."""
    chat = GreedyChat(model_dir)
    scores = {}
    for skill in SKILLS:
        examples = generate(seed, per_skill, "heldout", skills=(skill,))
        num_right = 0
        for i, example in enumerate(examples):
            if skill.startswith("react"):
                output, transcript = run_react(chat, example)
            else:
                output = chat.reply(prompt_messages(example))
                transcript = [output]
            right = is_correct(example, output)
            num_right += right
            if i < show:
                _show(example, transcript, right)
        scores[skill] = num_right / max(len(examples), 1)
        print(f"{skill}: {num_right}/{len(examples)}")
    return scores


def _show(example: Example, transcript: list[str], right: bool) -> None:
    is_react = example.skill.startswith("react")
    prompt = (example.messages[1] if is_react else prompt_messages(example)[-1])["content"]
    print(f"[{example.skill}] {'OK ' if right else 'BAD'} {prompt!r}\n"
          f"    -> {' || '.join(transcript)!r}  (want {example.answer!r})")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m sglc.training.sanity", description=__doc__)
    p.add_argument("model_dir", type=Path)
    p.add_argument("--per-skill", type=int, default=10)
    p.add_argument("--show", type=int, default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(1)  # fastest on shared cores, see sglc.training.train
    check(a.model_dir, a.per_skill, show=a.show)


if __name__ == "__main__":
    main()
