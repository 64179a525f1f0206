"""Batched per-request sampling reference: temperature, top-k, top-p, min-p, inverse-CDF draw.

Each row b has its own parameters and one pre-drawn uniform ``u[b]`` in [0, 1), so the token
is a pure function of (logits, parameters, u): the Triton version, given the same inputs,
picks the same token up to float summation order at exact boundaries.

Per row, on the probabilities ``p = softmax(logits / temperature)`` sorted descending
(stable, so ties keep the lower token id first), with positions j = 0..V-1::

    num_k    top-k: tokens >= the k-th largest (ties at the k-th all kept); V if off
    num_p    top-p over the top-k survivors: 1 + #{j < num_k - 1 : cum[j] < top_p * mass_k}
             (keep j while the mass strictly above j is below top_p; always the top token)
    num_min  min-p: #{j : p[j] >= min_p * p[0]}
    num_pos  #{j : p[j] > 0} (tokens masked to -inf, e.g. by a grammar bitmask, never come)
    keep     the prefix of num_keep = min(num_k, num_p, num_min, num_pos) tokens

The draw is the inverse CDF over the kept prefix: ``target = u * mass(keep)`` and the sorted
index is ``min(#{j < num_keep : cum[j] <= target}, num_keep - 1)``, i.e. the first kept token
whose cumulative mass exceeds the target. ``cum`` is the inclusive running sum of the sorted
probabilities; ``mass_k`` and ``mass(keep)`` are plain sums over the prefix.

Parameter conventions (per row): ``temperature <= 0`` is greedy (argmax of the raw logits,
lowest id among ties); ``top_k <= 0`` or ``>= V`` means no top-k filter (so 0, -1 and the
runtime's 2**31-1 all mean "off"); ``top_p >= 1`` means no top-p filter; ``min_p <= 0`` means
no min-p filter.
"""

from __future__ import annotations

import torch
from torch import Tensor


def sample_tokens(
    logits: Tensor,
    temperatures: Tensor,
    top_ks: Tensor,
    top_ps: Tensor,
    min_ps: Tensor,
    uniforms: Tensor,
) -> Tensor:
    """One token id per row of ``logits`` ``[B, V]`` (int64 ``[B]``); see the module docstring.

    ``temperatures``, ``top_ps``, ``min_ps``, ``uniforms``: float ``[B]``; ``top_ks``: int
    ``[B]``. ``logits`` is not modified. Draw ``uniforms`` with ``torch.rand(B, generator=g)``
    (or one ``torch.rand(1, generator=g_b)`` per seeded row).
    """
    sorted_probs, order = sort_probs(logits, temperatures)
    sorted_index = pick_sorted_index(sorted_probs, top_ks, top_ps, min_ps, uniforms)
    return choose_tokens(logits, temperatures, order, sorted_index)


def sort_probs(logits: Tensor, temperatures: Tensor) -> tuple[Tensor, Tensor]:
    """``softmax(logits / temperature)`` in float32, sorted descending (stable), and its order.

    Greedy rows (temperature <= 0) use temperature 1 here; :func:`choose_tokens` ignores them.
    """
    safe = torch.where(temperatures > 0, temperatures, torch.ones_like(temperatures))
    probs = torch.softmax(logits.float() / safe.float()[:, None], dim=-1)
    return probs.sort(dim=-1, descending=True, stable=True)


def pick_sorted_index(
    sorted_probs: Tensor, top_ks: Tensor, top_ps: Tensor, min_ps: Tensor, uniforms: Tensor
) -> Tensor:
    """The drawn position in each row of ``sorted_probs`` ``[B, V]`` (int64 ``[B]``)."""
    num_keep = num_kept(sorted_probs, top_ks, top_ps, min_ps)
    target = uniforms.float() * _prefix_mass(sorted_probs, num_keep)
    passed = (sorted_probs.cumsum(dim=-1) <= target[:, None]) & (
        _positions(sorted_probs) < num_keep[:, None]
    )
    return torch.minimum(passed.sum(-1), num_keep - 1)


def num_kept(sorted_probs: Tensor, top_ks: Tensor, top_ps: Tensor, min_ps: Tensor) -> Tensor:
    """How many of each row's top tokens survive top-k/top-p/min-p (int64 ``[B]``, >= 1).

    Every row needs one positive probability (not all logits -inf).
    """
    vocab_size = sorted_probs.shape[-1]
    num_k = _num_top_k(sorted_probs, top_ks)
    mass_k = _prefix_mass(sorted_probs, num_k)
    below = (sorted_probs.cumsum(dim=-1) < top_ps[:, None] * mass_k[:, None]) & (
        _positions(sorted_probs) < num_k[:, None] - 1
    )
    num_p = torch.where(top_ps < 1, 1 + below.sum(-1), vocab_size)
    num_min = (sorted_probs >= min_ps[:, None] * sorted_probs[:, :1]).sum(-1)
    num_pos = (sorted_probs > 0).sum(-1)
    return torch.minimum(torch.minimum(num_k, num_p), torch.minimum(num_min, num_pos))


def choose_tokens(
    logits: Tensor, temperatures: Tensor, order: Tensor, sorted_index: Tensor
) -> Tensor:
    """Token ids: ``order[b, sorted_index[b]]``, or the raw-logits argmax on greedy rows."""
    sampled = order.gather(-1, sorted_index[:, None].long())[:, 0]
    return torch.where(temperatures > 0, sampled, logits.argmax(dim=-1))


def _num_top_k(sorted_probs: Tensor, top_ks: Tensor) -> Tensor:
    vocab_size = sorted_probs.shape[-1]
    is_filtered = (top_ks > 0) & (top_ks < vocab_size)
    kth_index = torch.where(is_filtered, top_ks - 1, vocab_size - 1).long()
    # Without a filter the "k-th" is the smallest prob, so every token counts.
    kth = sorted_probs.gather(-1, kth_index[:, None])
    return (sorted_probs >= kth).sum(-1)


def _prefix_mass(sorted_probs: Tensor, lengths: Tensor) -> Tensor:
    return torch.where(_positions(sorted_probs) < lengths[:, None], sorted_probs, 0.0).sum(-1)


def _positions(sorted_probs: Tensor) -> Tensor:
    return torch.arange(sorted_probs.shape[-1], device=sorted_probs.device)[None, :]
