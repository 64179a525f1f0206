"""Batched token sampling for the decode loop.

One `SamplingBatch` is prepared per step from the running requests' `SamplingParams`;
`sample` turns that step's logits into one token per row. The pipeline, per row:

    raw logits ──► logprobs (log_softmax of the raw logits, if asked for)
        │
        ├─ banned ids → -inf (EOS and stop tokens before min_tokens)
        ├─ repetition_penalty over prompt + output ids   (HF: s<0 → s*p, else s/p)
        ├─ frequency / presence penalty over output ids  (OpenAI: s -= f*count + p*[count>0])
        │
        ├─ greedy rows (temperature == 0 or top_k == 1): argmax
        └─ other rows: / temperature → softmax → top-k → top-p → min-p → draw

Filtering zeroes probabilities (never merely shrinks them), so a token outside
top-k/top-p/min-p can never be drawn. The draw is the exponential race
`argmax(probs / E)`, `E ~ Exp(1)` i.i.d. per token, which picks token i with
probability probs[i] / sum(probs). Rows with a seed take `E` from their own generator
seeded by (seed, step), so their tokens depend only on (seed, step, logits).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from sglc.runtime.core import SamplingParams, TokenLogprob

# top_k of a row without a top-k filter: larger than any vocabulary, i.e. "keep all".
_UNLIMITED_TOP_K = 2**31 - 1
_MIN_TEMPERATURE = 1e-5
_MASK64 = (1 << 64) - 1


class TokenPenalty(NamedTuple):
    """Per-row penalty weights and, flattened, the token ids they apply to.

    weights    [B]     per row (neutral on rows not listed in row_ids)
    token_ids  [N]     ids of the penalized rows, concatenated
    row_ids    [N]     the row of each id
    """

    weights: torch.Tensor
    token_ids: torch.Tensor
    row_ids: torch.Tensor


class BannedTokens(NamedTuple):
    """Token ids a row may not sample now, flattened: row_ids[j] may not take token_ids[j]."""

    row_ids: torch.Tensor  # [N] int64
    token_ids: torch.Tensor  # [N] int64


class SampleOutput(NamedTuple):
    token_ids: list[int]
    # One entry per row; None where that row's params.logprobs is None.
    logprobs: list[TokenLogprob | None]


@dataclass(frozen=True, eq=False)
class SamplingBatch:
    """Per-step sampling inputs for B rows, as tensors on the logits' device.

    Build it with `prepare`. The `needs_*` / `all_greedy` flags let `sample` skip every
    stage no row in the batch uses; a penalty is None when no row uses it.
    """

    batch_size: int
    is_greedy: torch.Tensor  # [B] bool
    temperatures: torch.Tensor  # [B] float32; 1.0 on greedy rows (never divided by 0)
    top_ks: torch.Tensor  # [B] int64; _UNLIMITED_TOP_K where the row has no top-k
    top_ps: torch.Tensor  # [B] float32
    min_ps: torch.Tensor  # [B] float32
    # (row, generator seed) of sampled rows with params.seed, mixed from (seed, step) where
    # step = tokens the request has generated so far (len(output_ids)).
    seeded_rows: tuple[tuple[int, int], ...]
    unseeded_rows: torch.Tensor  # [U] int64: sampled rows that draw from the shared RNG
    num_logprobs: tuple[int | None, ...]
    all_greedy: bool
    needs_top_k: bool
    needs_top_p: bool
    needs_min_p: bool
    max_top_k: int  # largest top_k among sampled rows that have one (0 if none)
    # weights = repetition_penalty; ids = prompt + output (duplicates are harmless)
    repetition: TokenPenalty | None = None
    # ids = output only (duplicates are counted)
    frequency: TokenPenalty | None = None
    presence: TokenPenalty | None = None
    banned: BannedTokens | None = None

    @property
    def needs_penalties(self) -> bool:
        return any(p is not None for p in (self.repetition, self.frequency, self.presence,
                                           self.banned))

    @property
    def needs_logprobs(self) -> bool:
        return any(n is not None for n in self.num_logprobs)

    @classmethod
    def prepare(
        cls,
        params: list[SamplingParams],
        prompt_ids: list[list[int]],
        output_ids: list[list[int]],
        device: torch.device | str,
        banned: Sequence[tuple[int, Sequence[int]]] = (),
    ) -> SamplingBatch:
        """Gather one step's sampling inputs. Row i is (params[i], prompt_ids[i], output_ids[i]);
        `banned` lists (row, token ids that row may not sample) (the caller knows which
        rows have any, so rows without them cost nothing here)."""
        if not len(params) == len(prompt_ids) == len(output_ids):
            raise ValueError("params, prompt_ids and output_ids must have one entry per row")
        greedy = [p.is_greedy for p in params]
        top_ks = [_UNLIMITED_TOP_K if p.top_k is None else p.top_k for p in params]
        sampled = [p for p, g in zip(params, greedy, strict=True) if not g]

        def floats(values: list[float]) -> torch.Tensor:
            return torch.tensor(values, dtype=torch.float32, device=device)

        def token_penalty(
            weights: list[float], neutral: float, with_prompt: bool
        ) -> TokenPenalty | None:
            rows = [i for i, w in enumerate(weights) if w != neutral]
            if not rows:
                return None
            id_lists = (prompt_ids, output_ids) if with_prompt else (output_ids,)
            lengths = [sum(len(ids[r]) for ids in id_lists) for r in rows]
            tokens = list(itertools.chain.from_iterable(ids[r] for r in rows for ids in id_lists))
            row_ids = torch.repeat_interleave(
                torch.tensor(rows, dtype=torch.int64, device=device),
                torch.tensor(lengths, dtype=torch.int64, device=device),
            )
            token_ids = torch.tensor(tokens, dtype=torch.int64, device=device)
            return TokenPenalty(floats(weights), token_ids, row_ids)

        ks_with_filter = [p.top_k for p in sampled if p.top_k is not None]
        return cls(
            batch_size=len(params),
            is_greedy=torch.tensor(greedy, dtype=torch.bool, device=device),
            # Clamped so that logits / temperature stays finite for tiny temperatures.
            temperatures=floats(
                [
                    1.0 if g else max(p.temperature, _MIN_TEMPERATURE)
                    for p, g in zip(params, greedy, strict=True)
                ]
            ),
            top_ks=torch.tensor(top_ks, dtype=torch.int64, device=device),
            top_ps=floats([p.top_p for p in params]),
            min_ps=floats([p.min_p for p in params]),
            seeded_rows=tuple(
                (i, seed_for_step(p.seed, len(output_ids[i])))
                for i, p in enumerate(params)
                if p.seed is not None and not greedy[i]
            ),
            unseeded_rows=torch.tensor(
                [i for i, p in enumerate(params) if p.seed is None and not greedy[i]],
                dtype=torch.int64,
                device=device,
            ),
            num_logprobs=tuple(p.logprobs for p in params),
            all_greedy=all(greedy),
            needs_top_k=bool(ks_with_filter),
            needs_top_p=any(p.top_p < 1.0 for p in sampled),
            needs_min_p=any(p.min_p > 0.0 for p in sampled),
            max_top_k=max(ks_with_filter, default=0),
            repetition=token_penalty([p.repetition_penalty for p in params], 1.0, True),
            frequency=token_penalty([p.frequency_penalty for p in params], 0.0, False),
            presence=token_penalty([p.presence_penalty for p in params], 0.0, False),
            banned=_banned_tokens(banned, device) if banned else None,
        )


def _banned_tokens(banned: Sequence[tuple[int, Sequence[int]]],
                   device: torch.device | str) -> BannedTokens:
    rows = [row for row, ids in banned for _ in ids]
    ids = [t for _, row_ids in banned for t in row_ids]
    return BannedTokens(torch.tensor(rows, dtype=torch.int64, device=device),
                        torch.tensor(ids, dtype=torch.int64, device=device))


def sample(
    logits: torch.Tensor, batch: SamplingBatch, generator: torch.Generator | None = None
) -> SampleOutput:
    """Pick one token per row of `logits` [B, V]; `logits` is not modified.

    Logprobs (rows with params.logprobs set) are log_softmax of the *raw* logits, before
    penalties, temperature and filtering: the chosen token's and the top-`logprobs` ones.
    Unseeded rows draw their noise from `generator` (the default RNG when None).
    """
    if logits.dim() != 2 or logits.shape[0] != batch.batch_size:
        raise ValueError(f"logits must be [{batch.batch_size}, V], got {tuple(logits.shape)}")
    scores = apply_penalties(logits.float(), batch)
    if batch.all_greedy:
        token_ids = scores.argmax(dim=-1)
    else:
        probs = filtered_probs(scores, batch)
        sampled = (probs / _exponential_noise(probs, batch, generator)).argmax(dim=-1)
        token_ids = torch.where(batch.is_greedy, scores.argmax(dim=-1), sampled)
    token_list = token_ids.tolist()
    logprobs: list[TokenLogprob | None] = [None] * batch.batch_size
    if batch.needs_logprobs:
        logprobs = _logprobs(logits, token_list, batch)
    return SampleOutput(token_ids=token_list, logprobs=logprobs)


def greedy_from_columns(logits: torch.Tensor, columns: np.ndarray) -> list[int]:
    """Greedy tokens from logits ``[B, len(columns)]`` that hold only the vocabulary
    `columns` (ascending token ids): the argmax, mapped back to token ids. It is the token
    full-width greedy sampling picks when every other column is -inf (argmax takes the first
    maximum in both), without building, masking and scanning full-width rows."""
    return columns[logits.argmax(dim=-1).cpu().numpy()].tolist()


def apply_penalties(scores: torch.Tensor, batch: SamplingBatch) -> torch.Tensor:
    """Return penalized float32 scores [B, V] (a new tensor when any penalty applies);
    banned tokens get -inf."""
    if batch.banned is not None:
        banned = batch.banned
        scores = scores.index_put((banned.row_ids, banned.token_ids),
                                  torch.tensor(float("-inf"), device=scores.device))
    if batch.repetition is not None:
        seen = torch.zeros_like(scores, dtype=torch.bool)
        seen[batch.repetition.row_ids, batch.repetition.token_ids] = True
        penalty = batch.repetition.weights[:, None]
        penalized = torch.where(scores < 0, scores * penalty, scores / penalty)
        scores = torch.where(seen, penalized, scores)
    if batch.frequency is not None:
        scores = scores - batch.frequency.weights[:, None] * _token_counts(scores, batch.frequency)
    if batch.presence is not None:
        present = _token_counts(scores, batch.presence) > 0
        scores = scores - batch.presence.weights[:, None] * present.to(scores.dtype)
    return scores


def _token_counts(scores: torch.Tensor, penalty: TokenPenalty) -> torch.Tensor:
    counts = torch.zeros_like(scores)
    ones = torch.ones_like(penalty.token_ids, dtype=scores.dtype)
    return counts.index_put_((penalty.row_ids, penalty.token_ids), ones, accumulate=True)


def filtered_probs(scores: torch.Tensor, batch: SamplingBatch) -> torch.Tensor:
    """softmax(scores / temperature) with tokens outside top-k/top-p/min-p set to exactly 0.

    Not renormalized (the draw does not need it). Top-p is taken over the top-k survivors
    renormalized, and ties at the k-th probability are all kept, as in HF transformers.
    """
    probs = torch.softmax(scores / batch.temperatures[:, None], dim=-1)
    vocab_size = probs.shape[-1]
    if batch.needs_top_p:
        sorted_probs, order = probs.sort(dim=-1, descending=True, stable=True)
        if batch.needs_top_k:
            sorted_probs = _drop_below_kth(sorted_probs, sorted_probs, batch.top_ks)
        cumulative = sorted_probs.cumsum(dim=-1)
        # Keep token j while the mass strictly above it is < top_p: the smallest prefix whose
        # mass reaches top_p, and always the top token.
        mass_above = (cumulative - sorted_probs) / cumulative[:, -1:]
        drop = (mass_above >= batch.top_ps[:, None]) & (batch.top_ps[:, None] < 1.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs.masked_fill(drop, 0.0))
    elif batch.needs_top_k:
        top = probs.topk(min(batch.max_top_k, vocab_size), dim=-1).values
        probs = _drop_below_kth(probs, top, batch.top_ks)
    if batch.needs_min_p:
        max_probs = probs.amax(dim=-1, keepdim=True)
        probs = probs.masked_fill(probs < batch.min_ps[:, None] * max_probs, 0.0)
    return probs


def _drop_below_kth(probs: torch.Tensor, top: torch.Tensor, top_ks: torch.Tensor) -> torch.Tensor:
    """Zero probs below each row's k-th largest; `top` holds each row's largest, descending.

    Rows whose k covers the vocabulary keep everything; for the others k <= top.shape[1].
    """
    vocab_size = probs.shape[-1]
    kth_index = (top_ks.clamp(max=top.shape[-1]) - 1)[:, None]
    kth = top.gather(-1, kth_index)
    threshold = torch.where(top_ks[:, None] < vocab_size, kth, torch.zeros_like(kth))
    return probs.masked_fill(probs < threshold, 0.0)


def _exponential_noise(
    probs: torch.Tensor, batch: SamplingBatch, generator: torch.Generator | None
) -> torch.Tensor:
    """Exp(1) noise [B, V] for the sampled rows (greedy rows get 1s; they ignore it)."""
    num_unseeded = batch.unseeded_rows.numel()
    if num_unseeded == batch.batch_size:
        noise = torch.empty_like(probs).exponential_(generator=generator)
    else:
        noise = torch.ones_like(probs)
        if num_unseeded:
            shared = probs.new_empty(num_unseeded, probs.shape[-1])
            noise[batch.unseeded_rows] = shared.exponential_(generator=generator)
    for row, row_seed in batch.seeded_rows:
        row_generator = torch.Generator(device=probs.device)
        row_generator.manual_seed(row_seed)
        noise[row].exponential_(generator=row_generator)
    # NOTE: a zero draw would make 0/0 = nan for a filtered-out token; keep E > 0.
    return noise.clamp_(min=torch.finfo(noise.dtype).tiny)


def seed_for_step(seed: int, step: int) -> int:
    """Mix (seed, step) into one 63-bit generator seed (two splitmix64 rounds)."""
    return _splitmix64(_splitmix64(seed & _MASK64) ^ (step & _MASK64)) >> 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _logprobs(
    logits: torch.Tensor, token_ids: list[int], batch: SamplingBatch
) -> list[TokenLogprob | None]:
    wanted = [(row, n) for row, n in enumerate(batch.num_logprobs) if n is not None]
    rows = torch.tensor([row for row, _ in wanted], dtype=torch.int64, device=logits.device)
    chosen_ids = torch.tensor([token_ids[row] for row, _ in wanted], device=logits.device)
    logp = torch.log_softmax(logits[rows].float(), dim=-1)
    chosen = logp.gather(-1, chosen_ids[:, None])[:, 0].tolist()
    top_values, top_ids = logp.topk(min(max(n for _, n in wanted), logp.shape[-1]), dim=-1)
    top_values_list, top_ids_list = top_values.tolist(), top_ids.tolist()
    out: list[TokenLogprob | None] = [None] * batch.batch_size
    for j, (row, n) in enumerate(wanted):
        top = tuple(zip(top_ids_list[j][:n], top_values_list[j][:n], strict=True))
        out[row] = TokenLogprob(token_id=token_ids[row], logprob=chosen[j], top=top)
    return out
