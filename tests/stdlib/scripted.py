"""A scripted model for stdlib tests where statistics must come out exact: a ModelClient
whose gens answer by a Python function of the prompt text, and whose selects pick by
another. A module of its own, not a conftest (see model_fixtures)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from transformers import AutoTokenizer

from sglc.runtime.core import FinishReason, Output, SamplingParams, StreamDelta, Usage
from sglc.runtime.engine import default_model_path

Reply = Callable[[str, SamplingParams, int], str]  # (prompt text, params, sample index)
Choose = Callable[[str, list[str]], str]           # (prompt text, options) -> the pick


@dataclass(frozen=True)
class _Score:
    logprob: float
    num_tokens: int

    @property
    def normalized(self) -> float:
        return self.logprob / self.num_tokens


class ScriptedClient:
    """Gens answer `reply(prompt, params, i)`, cut at the first stop string as an engine
    does; a constrained gen's scripted text must fullmatch its regex or choices (else the
    test is wrong: AssertionError). Selects: the option `choose` names scores 0, the others
    -10. `prompts` records every gen's prompt text. A request for no tokens (the executor's
    prefetch of a fork's shared prompt) answers "" without asking the script."""

    def __init__(self, reply: Reply, choose: Choose | None = None) -> None:
        self.tokenizer = AutoTokenizer.from_pretrained(str(default_model_path()))
        self.reply = reply
        self.choose = choose or (lambda prompt, options: options[0])
        self.prompts: list[str] = []

    def submit(self, prompts: Sequence[list[int]], params: Sequence[SamplingParams], *,
               rids: Sequence[str], on_output: Callable[[Output], None],
               on_delta: Callable[[StreamDelta], None] | None = None) -> None:
        for prompt, p, rid in zip(prompts, params, rids, strict=True):
            text = self.tokenizer.decode(prompt)
            if p.max_new_tokens == 0:  # a prefetch: the prompt into the cache, no text
                on_output(Output(rid, 0, "", [], FinishReason.LENGTH, Usage(len(prompt), 0, 0)))
                continue
            text += p.healed_prefix  # the prompt as the script sees it: healing undone
            self.prompts.append(text)
            for i in range(p.n):
                out = p.healed_prefix + self._cut(self.reply(text, p, i), p)
                ids = self.tokenizer.encode(out, add_special_tokens=False)
                valid = None
                if p.regex is not None:
                    assert re.fullmatch(p.regex, out), f"script {out!r} breaks {p.regex!r}"
                    valid = True
                if p.choices:
                    assert out in p.choices, f"script {out!r} is not one of {p.choices}"
                    valid = True
                usage = Usage(len(prompt), 0, len(ids))
                on_output(Output(rid, i, out, ids, FinishReason.STOP, usage, is_valid=valid))

    @staticmethod
    def _cut(text: str, p: SamplingParams) -> str:
        cuts = [text.find(s) for s in p.stop if s in text]
        return text[:min(cuts)] if cuts else text

    async def score(self, prompt_ids: list[int], options: Sequence[str | list[int]]) -> list[_Score]:
        texts = [o if isinstance(o, str) else self.tokenizer.decode(o) for o in options]
        # options may carry a healed leading space: the script sees them stripped
        pick = self.choose(self.tokenizer.decode(prompt_ids), [t.strip() for t in texts])
        return [_Score(0.0 if t.strip() == pick else -10.0, 1) for t in texts]

    def prebuild(self, regexes: Sequence[str]) -> None:
        pass


def last_user_turn(prompt: str) -> str:
    """The text of the prompt's last user turn (ChatML)."""
    return prompt.rsplit("<|im_start|>user\n", 1)[-1].split("<|im_end|>", 1)[0]
