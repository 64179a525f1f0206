"""KV eviction policies: which of a request's cached tokens to keep when its KV outgrows a
budget, and the accumulated-attention table H2O ranks them by.

    exact   keep everything (the default; no eviction)
    window  StreamingLLM: the first `sink_tokens` (attention sinks) and the most recent rest
    h2o     H2O (Zhang et al., NeurIPS'23): the most recent ``recent_ratio x budget`` tokens
            and, of the older ones, the heavy hitters: those with the largest attention
            received so far, summed over queries, heads and layers

A slot holds a token's K and V in every layer and head, so one keep set serves the whole
request (H2O proper keeps one per layer and head; per-head sets would fragment the paged
pool). Kept tokens are compacted to the front of the request's `req_to_token` row, in order;
their positions (RoPE was applied before they were stored) stay the tokens' own::

    before:  row [s0 s1 s2 s3 s4 s5 s6 s7]   budget 5, keep columns {0, 2, 5, 6, 7}
    after:   row [s0 s2 s5 s6 s7]            s1, s3, s4 freed (if the request owns them)
             scores compacted the same way; the next token's slot goes to column 5
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

KV_POLICIES = ("exact", "window", "h2o")


class KVEvictionPolicy(ABC):
    """Contract: `keep(num_cols, scores)` for a request with `num_cols > budget` cached tokens
    returns `budget` distinct columns in ascending order, always including the newest one.
    `scores` (float32 `[num_cols]`) is given when `needs_scores`, else None."""

    needs_scores = False

    def __init__(self, budget: int) -> None:
        self.budget = budget

    @abstractmethod
    def keep(self, num_cols: int, scores: torch.Tensor | None) -> torch.Tensor: ...


class WindowEviction(KVEvictionPolicy):
    """Attention sinks and a window of the most recent tokens (StreamingLLM)."""

    def __init__(self, budget: int, sink_tokens: int) -> None:
        super().__init__(budget)
        self.sink_tokens = min(sink_tokens, budget - 1)

    def keep(self, num_cols, scores):  # noqa: D102
        recent = self.budget - self.sink_tokens
        return torch.cat([torch.arange(self.sink_tokens),
                          torch.arange(num_cols - recent, num_cols)])


class H2OEviction(KVEvictionPolicy):
    """Heavy hitters by accumulated attention, and the most recent tokens."""

    needs_scores = True

    def __init__(self, budget: int, recent_ratio: float) -> None:
        super().__init__(budget)
        self.num_recent = min(max(1, round(budget * recent_ratio)), budget)

    def keep(self, num_cols, scores):  # noqa: D102
        assert scores is not None
        older = num_cols - self.num_recent
        num_heavy = self.budget - self.num_recent
        heavy = torch.topk(scores[:older].cpu(), num_heavy).indices.sort().values
        return torch.cat([heavy, torch.arange(older, num_cols)])


def make_kv_policy(name: str, budget: int | None, sink_tokens: int,
                   recent_ratio: float) -> KVEvictionPolicy | None:
    """The policy named `name` (None for exact); ValueError for an unknown name."""
    if name == "exact":
        return None
    if budget is None:
        raise ValueError(f"kv_policy {name!r} needs kv_budget")
    if name == "window":
        return WindowEviction(budget, sink_tokens)
    if name == "h2o":
        return H2OEviction(budget, recent_ratio)
    raise ValueError(f"unknown kv_policy {name!r}; choose one of {', '.join(KV_POLICIES)}")


class KeyScores:
    """Accumulated attention per cached token, laid out like `req_to_token`
    (``[max_reqs, max_context_len]`` float32): what H2O ranks tokens by."""

    def __init__(self, max_reqs: int, max_context_len: int, device: torch.device) -> None:
        self.table = torch.zeros(max_reqs, max_context_len, dtype=torch.float32, device=device)

    def reset(self, row: int) -> None:
        self.table[row].zero_()

    def compact(self, row: int, keep: torch.Tensor, num_cols: int) -> None:
        """Move the kept columns' scores to the front, as the row's slots were."""
        kept = self.table[row, keep.to(self.table.device)]
        self.table[row, : keep.numel()] = kept
        self.table[row, keep.numel() : num_cols] = 0
