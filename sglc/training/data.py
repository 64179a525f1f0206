"""The seeded conversation generator the default model is trained and evaluated on.

Formats the model learns (the stdlib and examples should prompt the same way):

- ReAct (`react_calculator`, `react_search`): system prompt `REACT_SYSTEM`, then
  ``Question: ...`` / ``Thought: ...\\nAction: calculator\\nInput: 12*7`` /
  user ``Observation: 84`` / ``Thought: I know the answer.\\nAction: finish\\nInput: 84``.
- `json_extraction`: compact JSON with the requested keys, e.g. ``{"name":"Ann","age":31}``.
- `multiple_choice`: the fact, the options checked in order, then ``The answer is B.``;
  `yes_no`: ``Yes`` or ``No``; `judge`: the fact, each answer right or wrong, then ``[[A]]``
  or ``[[B]]``.
- `instruction`, `recall`, `one_sentence`, `repeat`: short plain-text answers.

The held-out split is decided by hashing each example's key (its question, or its expression
for arithmetic), so no question is in both splits whatever the seed.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator

from sglc.training.skills import Example, json_extraction, react_calculator, react_search
from sglc.training.skills_chat import instruction, recall, repeat
from sglc.training.skills_facts import judge, multiple_choice, one_sentence, yes_no

SkillFn = Callable[[random.Random], Example]

# skill name -> (generator, share of the training mixture)
SKILLS: dict[str, tuple[SkillFn, float]] = {
    "react_calculator": (react_calculator, 0.20),
    "react_search": (react_search, 0.05),
    "json_extraction": (json_extraction, 0.17),
    "multiple_choice": (multiple_choice, 0.16),
    "yes_no": (yes_no, 0.09),
    "judge": (judge, 0.13),
    "instruction": (instruction, 0.05),
    "recall": (recall, 0.06),
    "one_sentence": (one_sentence, 0.04),
    "repeat": (repeat, 0.05),
}
SPLITS = ("train", "heldout")
HELDOUT_PERCENT = 5


def split_of(example: Example) -> str:
    """"heldout" for about `HELDOUT_PERCENT`% of keys, "train" for the rest."""
    digest = hashlib.sha256(f"{example.skill}\0{example.key}".encode()).digest()
    return "heldout" if int.from_bytes(digest[:4], "little") % 100 < HELDOUT_PERCENT else "train"


def iter_examples(seed: int, split: str = "train",
                  skills: tuple[str, ...] | None = None) -> Iterator[Example]:
    """An endless, seeded stream of examples of `split`, mixed by the skill shares."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    names = tuple(skills) if skills else tuple(SKILLS)
    unknown = [n for n in names if n not in SKILLS]
    if unknown:
        raise ValueError(f"unknown skills {unknown}; known: {sorted(SKILLS)}")
    weights = [SKILLS[n][1] for n in names]
    rng = random.Random(seed)
    while True:
        name = rng.choices(names, weights)[0]
        example = SKILLS[name][0](rng)
        if split_of(example) == split:
            yield example


def generate(seed: int, num_examples: int, split: str = "train",
             skills: tuple[str, ...] | None = None) -> list[Example]:
    """The first `num_examples` examples of the seeded stream."""
    stream = iter_examples(seed, split, skills)
    return [next(stream) for _ in range(num_examples)]


def prompt_messages(example: Example) -> list[dict[str, str]]:
    """The conversation up to (not including) its last assistant turn, for evaluation."""
    messages = list(example.messages)
    return messages[: max(i for i, m in enumerate(messages) if m["role"] == "assistant")]
