"""`gen`, `select` and `prefetch`: where the executor meets the model.

The interpreter evaluates each instruction's operands and hands this part the values and
the frame's prompt; this part heals the prompt boundary, calls the model (batched in waves
by `ModelCalls`), turns the output into the SGL value and its meta info (`meta(x)`), writes
the output to the prompt, records a trace entry (a failed call too, with its error) and
tells the program's events.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial
from typing import Any

from sglc import ir
from sglc.ir import parse_generated
from sglc.lang import SELECT_PARAMS
from sglc.runtime.core import EngineError, FinishReason, Output
from sglc.runtime.executor.choices import best_option, option_scores, sample_option
from sglc.runtime.executor.client import Tokenizer
from sglc.runtime.executor.errors import GenError, SGLRuntimeError
from sglc.runtime.executor.events import ProgramEvents
from sglc.runtime.executor.generation import (
    GenParamError,
    describe_constraint,
    heal_gen,
    heal_options,
    healed_sampling,
    sampling_params,
)
from sglc.runtime.executor.model_calls import ModelCalls
from sglc.runtime.executor.model_choice import ModelChoice
from sglc.runtime.executor.prompt_stream import PromptStream
from sglc.runtime.executor.trace import (
    FramePath,
    Trace,
    call_details,
    frames_json,
    gen_meta,
    gen_record,
    select_record,
)
from sglc.runtime.mux import AUTO, Multiplexer, MuxError, Route
from sglc.source import Span


@dataclass(frozen=True)
class Done:
    """A gen's or select's SGL value, and what `meta(x)` reads about it."""

    value: Any
    meta: Any


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
        models: ModelChoice | None = None,
        mux: Multiplexer | None = None,
    ) -> None:
        self.calls = calls  # the default model's
        self.models = models or ModelChoice(calls)
        self.mux = mux  # what model="auto" asks (sglc.runtime.mux)
        self.trace = trace
        self.events = events
        self.normalized_select = normalized_select

    # -- gen ----------------------------------------------------------------------------------
    async def gen(
        self, i: ir.Gen, params: dict[str, Any], prompt: PromptStream, fn: str,
        path: FramePath = (),
    ) -> Done:
        """Generate gen `i` with its evaluated `params` (the frame's defaults under the
        gen's own) after `prompt`; append the output to the prompt (unless the gen asks for
        `n` samples) and return the gen's SGL value (a list of n with `n`)."""
        start = self._now()
        model, auto = self._auto(params.get("model"), prompt, f"gen '{i.dest}'")
        calls = self._model(model, prompt, f"gen '{i.dest}'")
        try:
            sampling = sampling_params(params)
        except GenParamError as exc:
            raise self._failed(i, fn, prompt.tokenizer, path, prompt.prompt_ids(), None, start,
                               f"gen '{i.dest}': {exc}") from None
        _require_prompt(prompt, f"gen '{i.dest}'")
        healed = heal_gen(prompt) if i.grammar is None else None
        ids = healed.prompt_ids if healed else prompt.prompt_ids()
        try:
            sampling = healed_sampling(sampling, i.regex, healed, i.grammar)
        except GenParamError as exc:
            raise self._failed(i, fn, prompt.tokenizer, path, ids, None, start,
                               f"gen '{i.dest}': {exc}") from None
        on_delta = None if self.events is None else partial(self.events.on_delta, fn, i.dest)
        try:
            if auto is not None and self.mux is not None and self.mux.log is not None:
                result = await self._explore(auto, ids, sampling, on_delta, prompt,
                                             f"gen '{i.dest}'")
            else:
                result = await calls.generate(ids, sampling, on_delta)
        except EngineError as exc:
            raise self._failed(i, fn, prompt.tokenizer, path, ids, None, start,
                               f"gen '{i.dest}': the engine failed: {exc}") from None
        texts = []
        for out in result.outputs:
            text = out.text
            if healed is not None and text.startswith(healed.spaces):
                text = text[len(healed.spaces) :]
            texts.append(text)
        try:
            values = [_gen_value(i, text, out) for text, out in zip(texts, result.outputs,
                                                                     strict=True)]
        except GenError as exc:
            raise self._failed(i, fn, prompt.tokenizer, path, ids, result.output, start,
                               exc.message, exc.hint, sampling) from None
        metas = [gen_meta(out, text, calls.tokenizer)
                 for out, text in zip(result.outputs, texts, strict=True)]
        if self.trace is not None:
            record = gen_record(i, fn, _decode(prompt.tokenizer, ids), sampling, result, texts,
                                start, self.trace.now())
            details = call_details(result.output, ids, metas[0]["logprobs"], calls.tokenizer,
                                   path)
            if model is not None:
                record["model"] = model
            if auto is not None:
                record["mux"] = auto.route.to_json()
            self.trace.add({**record, **details})
        if self.events is not None:
            for text in texts:
                self.events.on_value(fn, i.dest, text)
        if "n" in params:  # samples: alternatives, none of them is appended
            return Done(values, metas)
        out, text = result.output, texts[0]
        if healed is not None and not out.text.startswith(healed.spaces):
            healed = None
        if healed is not None:
            prompt.replace_tail(healed.head_text, prompt.encode_piece(healed.head_text))
        prompt.append_generated(out.text, out.token_ids)
        return Done(values[0], metas[0])

    def _failed(self, i: ir.Gen, fn: str, tokenizer: Tokenizer, path: FramePath,
                ids: list[int], out: Output | None, start: float, message: str,
                hint: str | None = None,
                sampling: Any = None) -> GenError:
        """The error of a failed gen, recorded in the trace with its prompt and partial
        output first."""
        if self.trace is not None:
            self.trace.add({
                "kind": "gen", "fn": fn, "name": i.dest, "location": str(i.span),
                "prompt": _decode(tokenizer, ids), "prompt_tokens": len(ids),
                "constraint": describe_constraint(i), "regex": i.regex,
                "output": None if out is None else out.text,
                "finish_reason": None if out is None or out.finish_reason is None
                else out.finish_reason.value,
                "error": message, "start_s": start, "end_s": self.trace.now(),
                **({} if out is None else
                   call_details(out, ids, None, tokenizer, path)),
                "frames": frames_json(path),
            })
        return GenError(message, hint=hint)

    # -- select -------------------------------------------------------------------------------
    async def select(self, i: ir.Select, options: Any, params: dict[str, Any],
                     prompt: PromptStream, fn: str, path: FramePath = ()) -> Done:
        """Score the options as continuations of `prompt`, rank them by `choices_method`,
        pick the best (or sample one with a temperature); append it and return it."""
        if (
            not isinstance(options, list)
            or not options
            or not all(isinstance(o, str) and o for o in options)
        ):
            raise SGLRuntimeError(
                f"select '{i.dest}' needs a non-empty list of non-empty "
                f"strings, got {options!r:.80}"
            )
        settings = _select_settings(i, params, self.normalized_select)
        method, temperature = settings["choices_method"], settings["temperature"]
        model, _ = self._auto(settings["model"], prompt, f"select '{i.dest}'")
        calls = self._model(model, prompt, f"select '{i.dest}'")
        ids = _require_prompt(prompt, f"select '{i.dest}'")
        healed = heal_options(prompt, options)
        start = self._now()
        if healed is not None:
            ids = healed.prompt_ids
            scores = await calls.score(ids, healed.continuations)
        else:
            scores = await calls.score(ids, options)
        unconditional = None
        if method == "unconditional_likelihood_normalized":
            unconditional = await self._unconditional(prompt, options, calls)
        ranked = option_scores(method, scores, unconditional)
        best = best_option(method, scores, ranked) if temperature == 0 else \
            sample_option(ranked, temperature, settings["seed"])
        meta = {
            "choice": options[best], "index": best, "options": list(options),
            "method": method, "scores": ranked, "logprobs": [s.logprob for s in scores],
            "num_tokens": [s.num_tokens for s in scores],
            "token_logprobs": [list(getattr(s, "token_logprobs", None) or []) for s in scores],
        }
        if self.trace is not None:
            record = select_record(i, fn, _decode(prompt.tokenizer, ids), len(ids), scores, meta,
                                   start, self.trace.now())
            self.trace.add({**record, "frames": frames_json(path)})
        if healed is not None:
            prompt.replace_tail(healed.tail + options[best], healed.joined[best])
        else:
            prompt.append(options[best])
        if self.events is not None:
            self.events.on_value(fn, i.dest, options[best])
        return Done(options[best], meta)

    async def _unconditional(self, prompt: PromptStream, options: list[str],
                             calls: ModelCalls) -> list[Any]:
        """The options' scores without the prompt's content: after only the open role
        turn's header, or, outside a turn, only the prompt's first token (standing in for
        the beginning of a text)."""
        if prompt.role is not None:
            bare = PromptStream(prompt.tokenizer)
            bare.begin_role(prompt.role)
            ids = bare.prompt_ids()
        else:
            ids = prompt.prompt_ids()[:1]
        return list(await calls.score(ids, options))

    # -- prefetch -----------------------------------------------------------------------------
    async def prefetch(self, prompt_ids: list[int], fn: str, span: Span,
                       path: FramePath = (), model: str | None = None) -> None:
        """Fill a prompt into the prefix cache of `model` (None: the default) (nothing
        generated); no-op for an empty one."""
        if not prompt_ids:
            return
        start = self._now()
        await self.models.calls(None if model == AUTO else model,
                                "a shared prefix").prefetch(prompt_ids)
        if self.trace is not None:
            self.trace.add(
                {
                    "kind": "prefetch",
                    "fn": fn,
                    "location": str(span),
                    "prompt_tokens": len(prompt_ids),
                    "start_s": start,
                    "end_s": self.trace.now(),
                    "frames": frames_json(path),
                }
            )

    def _auto(self, name: str | None, prompt: PromptStream, what: str
              ) -> tuple[str | None, _Auto | None]:
        """The model a gen or select names, with `auto` (or no name, when the multiplexer
        is the default) resolved by the multiplexer: (name, how, or None)."""
        if name is None and self.mux is not None and self.mux.is_default:
            name = AUTO
        if name != AUTO:
            return name, None
        if self.mux is None:
            raise GenError(f"{what}: model=\"auto\" needs a multiplexer, and this run has "
                           "none", hint="pass a predictor: sglc run --mux PRED.json (sglc mux "
                           "train LOG --out PRED.json), or Runtime(mux=...)")
        ids = prompt.prompt_ids()
        features = self.mux.features(ids, _decode(prompt.tokenizer, ids))
        route = self.mux.route(features)
        return route.model, _Auto(route, features)

    async def _explore(self, auto: _Auto, ids: list[int], sampling: Any,
                       on_delta: Any, prompt: PromptStream, what: str) -> Any:
        """A logging run's auto gen: every candidate answers (in the same waves), each
        answer is graded against the reference's and logged; the routed one is the gen's."""
        assert self.mux is not None
        names, chosen = self.mux.candidates, auto.route.model
        callers = [self._model(m, prompt, what) for m in names]
        results = await asyncio.gather(*(
            c.generate(ids, sampling, on_delta if m == chosen else None)
            for m, c in zip(names, callers, strict=True)))
        answers = {m: (r.output.text, len(r.output.token_ids))
                   for m, r in zip(names, results, strict=True) if not r.output.error}
        if self.mux.reference in answers:
            try:
                self.mux.record(ids, auto.features, _decode(prompt.tokenizer, ids), answers)
            except (MuxError, OSError) as exc:
                raise GenError(f"{what}: cannot log its outcomes: {exc}") from None
        return results[names.index(chosen)]

    def _model(self, name: str | None, prompt: PromptStream, what: str) -> ModelCalls:
        """The model a gen or select runs on; its prompt must be in that model's tokens."""
        calls = self.models.calls(name, what)
        self.models.check_prompt(prompt.tokenizer, name, calls, what)
        return calls

    def _now(self) -> float:
        return self.trace.now() if self.trace else 0.0



@dataclass(frozen=True)
class _Auto:
    """Where the multiplexer sent an auto gen, and the features it decided on."""

    route: Route
    features: Any


def _decode(tokenizer: Tokenizer, ids: list[int]) -> str:
    return tokenizer.decode(ids, skip_special_tokens=False)


def _select_settings(i: ir.Select, params: dict[str, Any], normalized: bool) -> dict[str, Any]:
    """The select's parameters, checked, with their defaults."""
    settings = {name: p.default for name, p in SELECT_PARAMS.items()}
    if not normalized:
        settings["choices_method"] = "logprob"
    for name, value in params.items():
        param = SELECT_PARAMS.get(name)
        problem = f"unknown select parameter '{name}'" if param is None else param.error(value)
        if problem is not None:
            raise GenError(f"select '{i.dest}': {problem}")
        settings[name] = value
    return settings


def _require_prompt(prompt: PromptStream, what: str) -> list[int]:
    ids = prompt.prompt_ids()
    if not ids:
        raise GenError(
            f"{what} has an empty prompt",
            hint="write some text (or a role turn) to the stream before it",
        )
    return ids


def _gen_value(i: ir.Gen, text: str, out: Output) -> Any:
    """The gen's SGL value; GenError when the engine failed or a constrained output is
    incomplete (saying what ended it: a stop string, max_tokens, an abort)."""
    if out.error:
        raise GenError(f"gen '{i.dest}': the engine failed: {out.error}")
    if out.is_valid is False:
        constraint = describe_constraint(i)
        if out.finish_reason == FinishReason.STOP:
            raise GenError(
                f"gen '{i.dest}': a stop string ended it before its constraint {constraint} "
                f"was complete: {text!r}",
                hint="drop the stop string: a constrained gen ends when its constraint is "
                "complete",
            )
        if out.finish_reason == FinishReason.ABORT:
            raise GenError(f"gen '{i.dest}' was aborted before completing its constraint "
                           f"{constraint}: {text!r}")
        raise GenError(
            f"gen '{i.dest}' ran out of tokens before completing its constraint "
            f"{constraint}: {text!r}",
            hint="raise max_tokens for this gen",
        )
    try:
        return parse_generated(i.value_type, text)
    except ir.ParseError as exc:
        raise GenError(f"gen '{i.dest}': cannot read {text!r} as {i.value_type}: {exc}") from None
