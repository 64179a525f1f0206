"""Normalize what users pass as prompts into token-id lists, with clear errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sglc.runtime.core import InvalidRequest, SamplingParams

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

Prompt = str | Sequence[int] | Sequence[Mapping[str, str]]


def is_messages(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) > 0
        and all(isinstance(m, Mapping) for m in value)
    )


_ONE_PROMPT = ("a string, token ids (a list of ints) or chat messages (a list of "
               "{'role': ..., 'content': ...} dicts)")
_ALLOWED_PROMPTS = f"{_ONE_PROMPT}, or a non-empty list of those"


def split_prompts(prompts: Any) -> list[Prompt]:
    """One prompt (a string, a token-id list, chat messages) or a list of them."""
    if isinstance(prompts, (bytes, bytearray, memoryview)):
        raise InvalidRequest(f"prompts must be {_ALLOWED_PROMPTS}; got bytes "
                             f"{bytes(prompts)!r:.60}: decode them to a string first")
    if isinstance(prompts, str) or is_messages(prompts) or _is_token_ids(prompts):
        return [prompts]
    if isinstance(prompts, Sequence) and prompts:
        if _is_int(prompts[0]):  # a token-id list with a bad entry
            k, bad = next((k, t) for k, t in enumerate(prompts) if not _is_int(t))
            raise InvalidRequest(f"token ids must be integers, got {bad!r:.60} at position {k}")
        return list(prompts)
    raise InvalidRequest(
        f"prompts must be {_ALLOWED_PROMPTS}; got {type(prompts).__name__} {prompts!r:.60}"
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_token_ids(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, (str, bytes, bytearray))
        and len(value) > 0
        and all(_is_int(t) for t in value)
    )


def tokenize_prompt(
    prompt: Prompt, tokenizer: PreTrainedTokenizerBase | None, vocab_size: int,
    where: str = "prompt",
) -> list[int]:
    """The token ids of one prompt; InvalidRequest naming `where` (e.g. `prompts[2]`)."""
    if isinstance(prompt, str):
        ids = _tokenizer(tokenizer).encode(prompt, add_special_tokens=True) if prompt else []
    elif is_messages(prompt):
        ids = render_chat(prompt, tokenizer)
    elif isinstance(prompt, Sequence) and not isinstance(prompt, (str, bytes, bytearray)):
        ids = list(prompt)
        bad = [t for t in ids if not _is_int(t) or not 0 <= t < vocab_size]
        if bad:
            raise InvalidRequest(f"{where}: token id {bad[0]!r:.60} is outside the vocabulary "
                                 f"(token ids are integers in [0, {vocab_size}))")
    else:
        hint = ": decode bytes to a string first" if isinstance(prompt, (bytes, bytearray)) else ""
        raise InvalidRequest(f"{where} must be {_ONE_PROMPT}; got {type(prompt).__name__} "
                             f"{prompt!r:.60}{hint}")
    if not ids:
        raise InvalidRequest(f"empty prompt ({where}): give at least one token")
    return ids


def render_chat(
    messages: Sequence[Mapping[str, str]], tokenizer: PreTrainedTokenizerBase | None
) -> list[int]:
    """Chat messages rendered with the model's chat template, ready for the assistant turn."""
    tok = _tokenizer(tokenizer)
    for m in messages:
        if not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise InvalidRequest("each chat message needs string 'role' and 'content' fields")
    if not getattr(tok, "chat_template", None):
        raise InvalidRequest("this model's tokenizer has no chat template; pass a plain prompt")
    try:
        ids = tok.apply_chat_template(
            [dict(m) for m in messages], add_generation_prompt=True, tokenize=True
        )
    except Exception as exc:  # jinja errors from the template itself
        raise InvalidRequest(f"the chat template failed on these messages: {exc}") from None
    if isinstance(ids, Mapping):  # newer transformers return a BatchEncoding
        ids = ids["input_ids"]
    return list(ids)


def _tokenizer(tokenizer: PreTrainedTokenizerBase | None) -> PreTrainedTokenizerBase:
    if tokenizer is None:
        raise InvalidRequest("this model directory has no tokenizer: pass token-id lists")
    return tokenizer


def per_prompt_params(sampling_params: Any, num_prompts: int) -> list[SamplingParams]:
    """One SamplingParams for every prompt, or a list with one per prompt."""
    if isinstance(sampling_params, (list, tuple)):
        if len(sampling_params) != num_prompts:
            raise InvalidRequest(
                f"got {len(sampling_params)} sampling params for {num_prompts} prompts: give "
                f"one (for all) or one per prompt"
            )
        return [SamplingParams.coerce(p) for p in sampling_params]
    params = SamplingParams.coerce(sampling_params)
    return [params] * num_prompts


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens two id sequences share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
