"""Turning what callers pass (prompts, sampling params, constraints, continuations to score)
into requests. Runs on the caller's thread, so bad input fails there, before anything is
queued for the engine's loop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sglc.constraints import ConstraintError, request_regex
from sglc.runtime.core import InvalidRequest, SamplingParams, new_rid
from sglc.runtime.engine.build import Capacity
from sglc.runtime.inputs import common_prefix_len, per_prompt_params, split_prompts, tokenize_prompt
from sglc.runtime.req import Req, ReqConstraint

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

ScorePair = tuple[list[int], list[int]]  # (prompt ids, continuation ids)


class RequestBuilder:
    """Requests for one engine: its tokenizer (None: token ids only), logits width, EOS ids
    and capacity."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase | None, vocab_size: int,
                 eos_token_ids: frozenset[int], capacity: Capacity,
                 lora_names: tuple[str, ...] = ()) -> None:
        self.tokenizer = tokenizer
        self.vocab_size = vocab_size
        self.eos_token_ids = eos_token_ids
        self.capacity = capacity
        self.lora_names = lora_names  # the LoRA adapters requests may name

    def groups(
        self, prompts: Any, sampling_params: Any, rids: Sequence[str] | None,
        constraint: Mapping[str, object] | None = None,
    ) -> list[list[Req]]:
        """One group per prompt, one Req per sample. `constraint`: regex, json_schema or
        choices set for every prompt (None values are ignored)."""
        items = split_prompts(prompts)
        params = per_prompt_params(sampling_params, len(items))
        given = {k: v for k, v in (constraint or {}).items() if v is not None}
        if given:
            params = [dataclasses.replace(p, **given) for p in params]
        if rids is not None and len(rids) != len(items):
            raise InvalidRequest(f"got {len(rids)} request ids for {len(items)} prompts")
        return [
            self._group(p, sp, rids[i] if rids else None)
            for i, (p, sp) in enumerate(zip(items, params, strict=True))
        ]

    def _group(self, prompt: Any, params: SamplingParams, rid: str | None) -> list[Req]:
        ids = tokenize_prompt(prompt, self.tokenizer, self.vocab_size)
        self.check_len(len(ids))
        self._check_lora(params.lora)
        rid = rid or new_rid()
        regex = self._constraint_regex(params)
        # samples of one request differ: sample i uses seed + i
        reqs = [Req(rid, i, ids, _sample_params(params, i), self.eos_token_ids)
                for i in range(params.n)]
        if regex is not None:
            for req in reqs:
                req.constraint = ReqConstraint(regex)
        return reqs

    def _constraint_regex(self, params: SamplingParams) -> str | None:
        if not params.is_constrained:
            return None
        if self.tokenizer is None:
            raise InvalidRequest("constrained decoding needs a model directory with a tokenizer")
        try:
            return request_regex(params.regex, params.json_schema, params.choices)
        except ConstraintError as exc:
            raise InvalidRequest(f"invalid constraint: {exc}") from None

    def _check_lora(self, name: str | None) -> None:
        if name is None or name in self.lora_names:
            return
        served = (f"this engine serves {', '.join(map(repr, self.lora_names))}"
                  if self.lora_names else "this engine serves none (start it with lora_paths)")
        raise InvalidRequest(f"unknown LoRA adapter {name!r}: {served}")

    def check_len(self, num_tokens: int) -> None:
        """InvalidRequest if a prompt of `num_tokens` tokens does not fit."""
        limit = self.capacity.max_prompt_tokens
        if num_tokens > limit:
            raise InvalidRequest(
                f"prompt of {num_tokens} tokens is longer than this engine allows ({limit}: "
                f"context length {self.capacity.max_context_len}, "
                f"KV pool {self.capacity.num_kv_slots} tokens)"
            )

    # -- scoring ------------------------------------------------------------------------------
    def score_pairs(self, prompt: Any,
                    continuations: Sequence[str | Sequence[int]]) -> list[ScorePair]:
        """The token ids of (prompt, continuation) for each continuation."""
        if not continuations:
            raise InvalidRequest("score needs at least one continuation")
        return [self._split_continuation(prompt, c) for c in continuations]

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

    def _split_continuation(self, prompt: Any, cont: str | Sequence[int]) -> ScorePair:
        """Two strings are tokenized together, so the boundary token is the one the model
        would see, and split where they diverge."""
        prompt_ids = tokenize_prompt(prompt, self.tokenizer, self.vocab_size)
        if isinstance(prompt, str) and isinstance(cont, str):
            full = tokenize_prompt(prompt + cont, self.tokenizer, self.vocab_size)
            common = common_prefix_len(prompt_ids, full)
            prompt_ids, cont_ids = full[:common], full[common:]
        elif isinstance(cont, str):
            cont_ids = self.tokenizer.encode(cont, add_special_tokens=False) if cont else []
        else:
            cont_ids = tokenize_prompt(cont, self.tokenizer, self.vocab_size)
        if not prompt_ids or not cont_ids:
            raise InvalidRequest("score needs a non-empty prompt and non-empty continuations")
        return prompt_ids, cont_ids


def _sample_params(params: SamplingParams, index: int) -> SamplingParams:
    if index == 0 or params.seed is None:
        return params
    return dataclasses.replace(params, seed=params.seed + index)
