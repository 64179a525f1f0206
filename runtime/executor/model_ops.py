"""`gen`, `select` and `prefetch`: where the executor meets the model.

The interpreter evaluates each instruction's operands and hands this part the values and
the frame's prompt; this part heals the prompt boundary, calls the model (batched in waves
by `ModelCalls`), turns the output into the SGL value, writes the output to the prompt,
records a trace entry and tells the program's events.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

from sglc import ir
from sglc.ir import parse_generated
from sglc.runtime.core import Output, SamplingParams
from sglc.runtime.executor.errors import GenError, SGLRuntimeError
from sglc.runtime.executor.events import ProgramEvents
from sglc.runtime.executor.generation import (
    GenParamError,
    constrained_regex,
    describe_constraint,
    heal_gen,
    heal_options,
    pick_best,
    sampling_params,
)
from sglc.runtime.executor.model_calls import GenResult, ModelCalls
from sglc.runtime.executor.prompt_stream import PromptStream
from sglc.runtime.executor.trace import Trace
from sglc.source import Span


class ModelOps:
    """The model-calling instructions of one interpreter. `fn` arguments label the SGL call
    (for traces and events); every method may raise GenError / SGLRuntimeError without a
    location, which the interpreter adds."""

    def __init__(
        self,
        calls: ModelCalls,
        trace: Trace | None = None,
        events: ProgramEvents | None = None,
        normalized_select: bool = True,
    ) -> None:
        self.calls = calls
        self.trace = trace
        self.events = events
        self.normalized_select = normalized_select

    # -- gen ----------------------------------------------------------------------------------
    async def gen(
        self, i: ir.Gen, params: dict[str, Any], prompt: PromptStream, fn: str
    ) -> Any:
        """Generate gen `i` with its evaluated `params` after `prompt`; append the output to
        the prompt and return the gen's SGL value."""
        try:
            sampling = sampling_params(params)
        except GenParamError as exc:
            raise GenError(f"gen '{i.dest}': {exc}") from None
        _require_prompt(prompt, f"gen '{i.dest}'")
        healed = heal_gen(prompt)
        ids = healed.prompt_ids if healed else prompt.prompt_ids()
        if i.regex is not None:  # the engine decodes under the constraint
            spaces = healed.spaces if healed else ""
            sampling = dataclasses.replace(sampling, regex=constrained_regex(i.regex, spaces))
        start = self.trace.now() if self.trace else 0.0
        on_delta = None if self.events is None else partial(self.events.on_delta, fn, i.dest)
        result = await self.calls.generate(ids, sampling, on_delta)
        out = result.output
        if out.error:
            raise GenError(f"gen '{i.dest}': the engine failed: {out.error}")
        text = out.text
        if healed is not None and text.startswith(healed.spaces):
            text = text[len(healed.spaces) :]
        else:
            healed = None
        value = _gen_value(i, text, out)
        if self.trace is not None:
            prompt_text = self.calls.tokenizer.decode(ids, skip_special_tokens=False)
            self.trace.add(_gen_record(i, fn, prompt_text, sampling, result, text, start,
                                       self.trace.now()))
        if healed is not None:
            prompt.replace_tail(healed.head_text, prompt.encode_piece(healed.head_text))
        prompt.append_generated(out.text, out.token_ids)
        if self.events is not None:
            self.events.on_value(fn, i.dest, text)
        return value

    # -- select -------------------------------------------------------------------------------
    async def select(self, i: ir.Select, options: Any, prompt: PromptStream, fn: str) -> str:
        """Score the options as continuations of `prompt`; append the best and return it."""
        if (
            not isinstance(options, list)
            or not options
            or not all(isinstance(o, str) and o for o in options)
        ):
            raise SGLRuntimeError(
                f"select '{i.dest}' needs a non-empty list of non-empty "
                f"strings, got {options!r:.80}"
            )
        ids = _require_prompt(prompt, f"select '{i.dest}'")
        healed = heal_options(prompt, options)
        start = self.trace.now() if self.trace else 0.0
        if healed is not None:
            ids = healed.prompt_ids
            scores = await self.calls.score(ids, healed.continuations)
        else:
            scores = await self.calls.score(ids, options)
        best = pick_best(scores, normalized=self.normalized_select)
        if self.trace is not None:
            self.trace.add(
                {
                    "kind": "select",
                    "fn": fn,
                    "name": i.dest,
                    "location": str(i.span),
                    "prompt": self.calls.tokenizer.decode(ids, skip_special_tokens=False),
                    "prompt_tokens": len(ids),
                    "options": options,
                    "scores": [
                        {
                            "logprob": s.logprob,
                            "num_tokens": s.num_tokens,
                            "normalized": s.normalized,
                        }
                        for s in scores
                    ],
                    "chosen": options[best],
                    "start_s": start,
                    "end_s": self.trace.now(),
                }
            )
        if healed is not None:
            prompt.replace_tail(healed.tail + options[best], healed.joined[best])
        else:
            prompt.append(options[best])
        if self.events is not None:
            self.events.on_value(fn, i.dest, options[best])
        return options[best]

    # -- prefetch -----------------------------------------------------------------------------
    async def prefetch(self, prompt_ids: list[int], fn: str, span: Span) -> None:
        """Fill a prompt into the prefix cache (nothing generated); no-op for an empty one."""
        if not prompt_ids:
            return
        start = self.trace.now() if self.trace else 0.0
        await self.calls.prefetch(prompt_ids)
        if self.trace is not None:
            self.trace.add(
                {
                    "kind": "prefetch",
                    "fn": fn,
                    "location": str(span),
                    "prompt_tokens": len(prompt_ids),
                    "start_s": start,
                    "end_s": self.trace.now(),
                }
            )


def _require_prompt(prompt: PromptStream, what: str) -> list[int]:
    ids = prompt.prompt_ids()
    if not ids:
        raise GenError(
            f"{what} has an empty prompt",
            hint="write some text (or a role turn) to the stream before it",
        )
    return ids


def _gen_value(i: ir.Gen, text: str, out: Output) -> Any:
    """The gen's SGL value; GenError when a constrained output is incomplete."""
    if out.is_valid is False:
        raise GenError(
            f"gen '{i.dest}' ran out of tokens before completing its constraint "
            f"{describe_constraint(i)}: {text!r}",
            hint="raise max_tokens for this gen",
        )
    try:
        return parse_generated(i.value_type, text)
    except ir.ParseError as exc:
        raise GenError(f"gen '{i.dest}': cannot read {text!r} as {i.value_type}: {exc}") from None


def _gen_record(
    i: ir.Gen, fn: str, prompt_text: str, params: SamplingParams, result: GenResult,
    text: str, start: float, end: float,
) -> dict[str, Any]:
    out = result.output
    return {
        "kind": "gen",
        "fn": fn,
        "name": i.dest,
        "location": str(i.span),
        "prompt": prompt_text,
        "prompt_tokens": out.usage.prompt_tokens,
        "params": _params_json(params),
        "constraint": describe_constraint(i),
        "regex": i.regex,
        "output": out.text,
        "value_text": text,
        "finish_reason": out.finish_reason.value if out.finish_reason else None,
        "cached_tokens": out.usage.cached_tokens,
        "completion_tokens": out.usage.completion_tokens,
        "forced_tokens": out.usage.forced_tokens,
        "forward_passes": out.usage.forward_passes,
        "batch_size": result.batch_size,
        "start_s": start,
        "end_s": end,
    }


def _params_json(params: SamplingParams) -> dict[str, Any]:
    return {
        "max_new_tokens": params.max_new_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k,
        "min_p": params.min_p,
        "seed": params.seed,
        "stop": list(params.stop),
        "frequency_penalty": params.frequency_penalty,
        "presence_penalty": params.presence_penalty,
        "lora": params.lora,
    }
