"""The model-calling instructions of the interpreter: `gen`, `select`, `prefetch`.

A mixin of `Interpreter` (which supplies `program`, `client`, `trace`, `on_gen`,
`normalized_select`); kept apart because this is where the executor meets the engine:
prompt-boundary healing, constrained gens (decoded by the engine) and trace records.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sglc import ir
from sglc.ir import parse_generated
from sglc.runtime.executor.errors import GenError, SGLRuntimeError
from sglc.runtime.executor.generation import (
    GenParamError,
    constrained_regex,
    describe_constraint,
    heal_gen,
    heal_options,
    pick_best,
    sampling_params,
)
from sglc.runtime.executor.model_calls import EngineClient
from sglc.runtime.executor.streams import Stream
from sglc.runtime.executor.trace import Trace

if TYPE_CHECKING:
    from sglc.runtime.executor.interpreter import _Frame


class ModelOps:
    program: ir.IRProgram
    client: EngineClient
    trace: Trace | None
    on_gen: Callable[[str, str, str], None] | None
    on_token: Callable[[str, str, str], None] | None
    normalized_select: bool

    def _val(self, operand: ir.Operand, frame: _Frame) -> Any:
        raise NotImplementedError  # Interpreter's

    def _kwargs(self, kwargs: ir.KwArgs, frame: _Frame) -> dict[str, Any]:
        raise NotImplementedError  # Interpreter's

    def _prompt(self, f: _Frame, what: str) -> list[int]:
        ids = f.stream.prompt_ids()
        if not ids:
            raise GenError(
                f"{what} has an empty prompt",
                hint="write some text (or a role turn) to the stream before it",
            )
        return ids

    async def _gen(self, i: ir.Gen, f: _Frame) -> None:
        try:
            params = sampling_params(self._kwargs(i.params, f))
        except GenParamError as exc:
            raise GenError(f"gen '{i.dest}': {exc}") from None
        self._prompt(f, f"gen '{i.dest}'")
        healed = heal_gen(f.stream)
        ids = healed.prompt_ids if healed else f.stream.prompt_ids()
        if i.regex is not None:  # the engine decodes under the constraint
            spaces = healed.spaces if healed else ""
            params = dataclasses.replace(params, regex=constrained_regex(i.regex, spaces))
        start = self.trace.now() if self.trace else 0.0
        on_text = None
        if self.on_token is not None:
            on_token = self.on_token
            on_text = lambda delta: on_token(f.label, i.dest, delta)  # noqa: E731
        result = await self.client.generate(ids, params, on_text)
        out = result.output
        if out.error:
            raise GenError(f"gen '{i.dest}': the engine failed: {out.error}")
        text = out.text
        if healed is not None and text.startswith(healed.spaces):
            text = text[len(healed.spaces) :]
        else:
            healed = None
        value = self._gen_value(i, text, out)
        if self.trace is not None:
            self._trace_gen(i, f, ids, params, result, text, start)
        if healed is not None:
            f.stream.replace_tail(healed.head_text, f.stream.encode_piece(healed.head_text))
        f.stream.append_generated(out.text, out.token_ids)
        if self.on_gen is not None:
            self.on_gen(f.label, i.dest, text)
        f.vars[i.dest] = value

    @staticmethod
    def _gen_value(i: ir.Gen, text: str, out: Any) -> Any:
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

    def _trace_gen(self, i, f, ids, params, result, text, start) -> None:
        out = result.output
        self.trace.add(
            {
                "kind": "gen",
                "fn": f.label,
                "name": i.dest,
                "location": str(i.span),
                "prompt": self.client.tokenizer.decode(ids, skip_special_tokens=False),
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
                "end_s": self.trace.now(),
            }
        )

    async def _select(self, i: ir.Select, f: _Frame) -> None:
        options = self._val(i.options, f)
        if (
            not isinstance(options, list)
            or not options
            or not all(isinstance(o, str) and o for o in options)
        ):
            raise SGLRuntimeError(
                f"select '{i.dest}' needs a non-empty list of non-empty "
                f"strings, got {options!r:.80}"
            )
        f.vars[i.dest] = await self._choose(i, f, options)

    async def _choose(self, i: ir.Gen | ir.Select, f: _Frame, options: list[str]) -> str:
        """Score options as continuations of the stream; append and return the best."""
        ids = self._prompt(f, f"select '{i.dest}'")
        healed = heal_options(f.stream, options)
        start = self.trace.now() if self.trace else 0.0
        if healed is not None:
            ids = healed.prompt_ids
            scores = await self.client.score(ids, healed.continuations)
        else:
            scores = await self.client.score(ids, options)
        best = pick_best(scores, normalized=self.normalized_select)
        if self.trace is not None:
            self.trace.add(
                {
                    "kind": "select",
                    "fn": f.label,
                    "name": i.dest,
                    "location": str(i.span),
                    "prompt": self.client.tokenizer.decode(ids, skip_special_tokens=False),
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
            f.stream.replace_tail(healed.tail + options[best], healed.joined[best])
        else:
            f.stream.append(options[best])
        if self.on_gen is not None:
            self.on_gen(f.label, i.dest, options[best])
        return options[best]

    async def _prefetch_hint(self, i: ir.Prefetch, f: _Frame) -> None:
        stream = Stream(self.client.tokenizer) if i.fresh else f.stream.fork()
        for op in i.prefix:
            if isinstance(op, ir.Append):
                stream.append(ir.to_text(self._val(op.value, f)))
            elif isinstance(op, ir.RoleBegin):
                stream.begin_role(op.role)
            elif isinstance(op, ir.RoleEnd):
                stream.end_role()
        await self._prefetch(stream.prompt_ids(), f, i.span)

    async def _prefetch(self, ids: list[int], f: _Frame, span: Any) -> None:
        if not ids:
            return
        start = self.trace.now() if self.trace else 0.0
        await self.client.prefetch(ids)
        if self.trace is not None:
            self.trace.add(
                {
                    "kind": "prefetch",
                    "fn": f.label,
                    "location": str(span),
                    "prompt_tokens": len(ids),
                    "start_s": start,
                    "end_s": self.trace.now(),
                }
            )

    async def _fan_out(self, f: _Frame, span: Any, n: int) -> None:
        """Before n >= 2 branches start from this stream, fill it into the prefix cache once
        (unless a Prefetch hint just did), so they all extend a cached prefix together."""
        if n >= 2 and not f.just_prefetched:
            await self._prefetch(f.stream.prompt_ids(), f, span)


def _params_json(params: Any) -> dict[str, Any]:
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
    }
