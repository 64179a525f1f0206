"""Turning what callers pass (prompts, sampling params, constraints, continuations to score)
into requests. Runs on the caller's thread, so bad input fails there, before anything is
queued for the engine's loop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sglc.constraints import ConstraintError
from sglc.constraints.grammar import RequestConstraint, request_constraint
from sglc.constraints.search import SearchPattern, SearchPatterns, compile_search
from sglc.runtime.config import EngineConfig
from sglc.runtime.core import CONSTRAINT_FIELDS, InvalidRequest, SamplingParams, new_rid
from sglc.runtime.engine.build import Capacity
from sglc.runtime.inputs import (
    common_prefix_len,
    is_messages,
    per_prompt_params,
    split_prompts,
    tokenize_prompt,
)
from sglc.runtime.req import Req, ReqConstraint

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

ScorePair = tuple[list[int], list[int]]  # (prompt ids, continuation ids)


class RequestBuilder:
    """Requests for one engine: its tokenizer (None: token ids only), logits width, EOS ids,
    capacity and request limits (`EngineConfig.max_*`)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase | None, vocab_size: int,
                 eos_token_ids: frozenset[int], capacity: Capacity,
                 limits: EngineConfig) -> None:
        self.tokenizer = tokenizer
        self.vocab_size = vocab_size
        self.eos_token_ids = eos_token_ids
        self.capacity = capacity
        self.limits = limits

    def groups(
        self, prompts: Any, sampling_params: Any, rids: Sequence[str] | None,
        constraint: Mapping[str, object] | None = None,
    ) -> list[list[Req]]:
        """One group per prompt, one Req per sample. `constraint`: regex, json_schema,
        choices or grammar set for every prompt (None values are ignored)."""
        items = split_prompts(prompts)
        self._check_limit("prompts in one call", len(items), "max_prompts_per_call")
        params = per_prompt_params(sampling_params, len(items))
        given = {k: v for k, v in (constraint or {}).items() if v is not None}
        if given:
            try:
                params = [dataclasses.replace(p, **given) for p in params]
            except TypeError as exc:  # pragma: no cover - the keys are fields
                raise InvalidRequest(str(exc)) from None
        names = check_rids(rids, len(items))
        many = len(items) > 1
        return [
            self._group(p, sp, names[i] if names else None, i, f"prompts[{i}]" if many else "prompt")
            for i, (p, sp) in enumerate(zip(items, params, strict=True))
        ]

    def _group(self, prompt: Any, params: SamplingParams, rid: str | None, index: int,
               where: str) -> list[Req]:
        self.check_params(params)
        ids = tokenize_prompt(prompt, self.tokenizer, self.vocab_size, where)
        self.check_len(len(ids))
        self._check_lora(params.lora)
        self._check_sparsity(params.attention_sparsity)
        rid = rid or new_rid()
        constraint = self._constraint(params)
        patterns = self._stop_patterns(params)
        # samples of one request differ: sample i uses seed + i
        reqs = [Req(rid, i, ids, params.for_sample(i), self.eos_token_ids, prompt_index=index,
                    stop_patterns=patterns) for i in range(params.n)]
        if constraint is not None:
            for req in reqs:
                req.constraint = ReqConstraint(constraint.regex, constraint.grammar)
        return reqs

    def check_params(self, params: SamplingParams) -> None:
        """InvalidRequest if `params` go beyond this engine's limits or vocabulary."""
        self._check_limit("n", params.n, "max_n")
        self._check_limit("max_new_tokens", params.max_new_tokens, "max_new_tokens_limit")
        self._check_limit("stop strings", len(params.stop), "max_stop_strings")
        self._check_limit("stop_regex patterns", len(params.stop_regex), "max_stop_strings")
        self._check_limit("stop_token_ids", len(params.stop_token_ids), "max_stop_token_ids")
        bad = [t for t in params.stop_token_ids if t >= self.vocab_size]
        if bad:
            raise InvalidRequest(f"invalid sampling params: stop_token_ids has {bad[0]}, outside "
                                 f"the vocabulary (token ids are integers in [0, {self.vocab_size}))")

    def _check_limit(self, what: str, value: int, option: str) -> None:
        limit = getattr(self.limits, option)
        if value > limit:
            raise InvalidRequest(
                f"{what}: {value} is more than this engine allows ({option}={limit}; raise it "
                f"with Engine({option}=...))"
            )

    def _constraint(self, params: SamplingParams) -> RequestConstraint | None:
        """The request's regex or llguidance grammar (a json_schema the regex path refuses
        takes the grammar path)."""
        if not params.is_constrained:
            return None
        if self.tokenizer is None:
            raise InvalidRequest("constrained decoding needs a model directory with a tokenizer")
        try:
            return request_constraint(params.regex, params.json_schema, params.choices,
                                      params.grammar)
        except ConstraintError as exc:
            name = next(n for n in CONSTRAINT_FIELDS if getattr(params, n) is not None)
            hint = f"; {exc.hint}" if exc.hint else ""
            raise InvalidRequest(f"invalid constraint: {name} {getattr(params, name)!r:.80}: "
                                 f"{exc}{hint}") from None

    def _stop_patterns(self, params: SamplingParams) -> tuple[SearchPattern, ...]:
        """The compiled stop regexes (here, on the caller's thread, not the engine's loop)."""
        if not params.stop_regex:
            return ()
        if self.tokenizer is None:
            raise InvalidRequest("stop_regex needs a model directory with a tokenizer")
        message = SearchPatterns().error("stop_regex", params.stop_regex)
        if message is not None:
            raise InvalidRequest(f"invalid sampling params: {message}")
        return tuple(compile_search(p) for p in params.stop_regex)

    def _check_lora(self, name: str | None) -> None:
        lora_names = self.limits.lora_names
        if name is None or name in lora_names:
            return
        served = (f"this engine serves {', '.join(map(repr, lora_names))}"
                  if lora_names else "this engine serves none (start it with lora_paths)")
        raise InvalidRequest(f"unknown LoRA adapter {name!r}: {served}")

    def _check_sparsity(self, ratios: tuple[float, float] | None) -> None:
        if ratios is None:
            return
        if self.limits.sparsity_calibration is None:
            raise InvalidRequest("attention_sparsity needs an engine started with "
                                 "sparsity_calibration (the file `sglc calibrate MODEL` writes, "
                                 "or 'auto' for the one next to the model)")
        label_ratio = self.limits.sparsity_label_ratio
        if ratios[1] > label_ratio:
            raise InvalidRequest(f"attention_sparsity channel_ratio {ratios[1]:g} is more than "
                                 f"this engine's label cache holds (sparsity_label_ratio="
                                 f"{label_ratio:g}; raise it with Engine(sparsity_label_ratio="
                                 "...))")

    def check_len(self, num_tokens: int) -> None:
        """InvalidRequest if a prompt of `num_tokens` tokens does not fit."""
        fits = self.capacity.max_prompt_tokens
        option = self.limits.max_prompt_tokens
        if num_tokens <= fits and (option is None or num_tokens <= option):
            return
        if option is not None and option < fits:
            raise InvalidRequest(
                f"prompt of {num_tokens} tokens is longer than this engine allows "
                f"(max_prompt_tokens={option}; raise it with Engine(max_prompt_tokens=...))"
            )
        raise InvalidRequest(
            f"prompt of {num_tokens} tokens is longer than this engine allows ({fits}: "
            f"context length {self.capacity.max_context_len}, KV pool "
            f"{self.capacity.num_kv_slots} tokens; Engine(max_context_len=..., "
            f"max_total_tokens=...) set them, up to the model's context length)"
        )

    # -- scoring ------------------------------------------------------------------------------
    def score_pairs(self, prompt: Any,
                    continuations: Sequence[str | Sequence[int]]) -> list[ScorePair]:
        """The token ids of (prompt, continuation) for each continuation."""
        if not isinstance(continuations, (list, tuple)) or not continuations:
            raise InvalidRequest(
                f"continuations must be a non-empty list of strings or token-id lists, got "
                f"{type(continuations).__name__} {continuations!r:.60}")
        self._check_limit("continuations", len(continuations), "max_prompts_per_call")
        if isinstance(prompt, (list, tuple)) and not _is_ids(prompt) and not is_messages(prompt):
            raise InvalidRequest(f"score takes one prompt (a string or token ids), got a list "
                                 f"{prompt!r:.60}")
        return [self._split_continuation(prompt, c, f"continuations[{k}]")
                for k, c in enumerate(continuations)]

    def score_reqs(self, pairs: Sequence[ScorePair]) -> list[Req]:
        """One request per pair, computing the prompt and recording the continuation's
        logprobs (`Req.score_from`), generating nothing."""
        params = SamplingParams(max_new_tokens=0)
        reqs = []
        for prompt_ids, cont_ids in pairs:
            self.check_len(len(prompt_ids) + len(cont_ids))
            req = Req(new_rid(), 0, prompt_ids + cont_ids, params, self.eos_token_ids)
            req.score_from = len(prompt_ids)
            reqs.append(req)
        return reqs

    def _split_continuation(self, prompt: Any, cont: str | Sequence[int],
                            where: str) -> ScorePair:
        """Two strings are tokenized together, so the boundary token is the one the model
        would see, and split where they diverge."""
        prompt_ids = tokenize_prompt(prompt, self.tokenizer, self.vocab_size)
        if isinstance(cont, str) and not cont:
            raise InvalidRequest(f"{where} is empty: give a non-empty continuation")
        if isinstance(prompt, str) and isinstance(cont, str):
            full = tokenize_prompt(prompt + cont, self.tokenizer, self.vocab_size)
            common = common_prefix_len(prompt_ids, full)
            prompt_ids, cont_ids = full[:common], full[common:]
        elif isinstance(cont, str):
            if self.tokenizer is None:
                raise InvalidRequest(f"{where}: this model directory has no tokenizer: pass "
                                     f"token-id lists")
            cont_ids = self.tokenizer.encode(cont, add_special_tokens=False)
        elif _is_ids(cont):
            cont_ids = tokenize_prompt(cont, self.tokenizer, self.vocab_size, where)
        else:
            raise InvalidRequest(f"{where} must be a string or token ids (a list of ints), "
                                 f"got {type(cont).__name__} {cont!r:.60}")
        if not prompt_ids or not cont_ids:
            raise InvalidRequest("score needs a non-empty prompt and non-empty continuations")
        return prompt_ids, cont_ids


def _is_ids(value: object) -> bool:
    return isinstance(value, (list, tuple)) and all(
        isinstance(t, int) and not isinstance(t, bool) for t in value)


def check_rids(rids: object, num_prompts: int) -> list[str] | None:
    """The request ids given for `num_prompts` prompts: None, or a list of that many distinct
    non-empty strings (InvalidRequest otherwise)."""
    if rids is None:
        return None
    if not isinstance(rids, (list, tuple)):
        raise InvalidRequest(f"rids must be a list of request ids (strings), one per prompt, "
                             f"got {type(rids).__name__} {rids!r:.60}")
    if len(rids) != num_prompts:
        raise InvalidRequest(f"got {len(rids)} request ids for {num_prompts} prompts: rids "
                             f"needs one per prompt")
    for k, rid in enumerate(rids):
        if not isinstance(rid, str) or not rid:
            raise InvalidRequest(f"rids[{k}] must be a non-empty string, got {rid!r:.60}")
    if len(set(rids)) != len(rids):
        dup = next(r for r in rids if rids.count(r) > 1)
        raise InvalidRequest(f"rids must be unique within a call: {dup!r:.60} appears "
                             f"{rids.count(dup)} times")
    return list(rids)
