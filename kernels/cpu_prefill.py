"""Long extends (prompt prefills) on CPU: fresh prompts through one causal SDPA each.

A request whose extend starts at position 0 (no cached prefix) and whose layers have no
sliding window attends causally over exactly its new tokens, so its attention is
``F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)`` over its own
pool rows: no padding to the batch's longest request and no explicit mask, which the
reference's padded-group path needs (with a logit soft cap, which SDPA lacks, the
reference's `attend` on the request's causal mask). Requests that continue a cached prefix (a
chunked prompt's later chunks, prefix-cache hits) keep the reference's plan, run on their q
rows only.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from sglc.kernels.attention_common import AttentionPlan, AttentionShape, attend
from sglc.kernels.extend_attention import extend_attention, plan_extend
from sglc.kernels.kv_quant import KVBuffer, gather_rows


class CpuPrefillPlan(NamedTuple):
    """Fresh requests as (first q row, tokens, their slots); the rest as a reference plan
    over their own q rows (`rest_q_rows`) and metadata."""

    sliding_window: int | None
    fresh: list[tuple[int, int, Tensor]]
    rest_q_rows: Tensor | None
    rest: tuple[list[int], list[int], list[int]] | None  # rows, prefixes, extends
    rest_plan: AttentionPlan | None


def plan_prefill(
    req_to_token: Tensor,
    rows: list[int],
    prefixes: list[int],
    extends: list[int],
    shape: AttentionShape,
    sliding_window: int | None,
) -> CpuPrefillPlan:
    """Split an extend batch into fresh prompts (one causal SDPA each) and the rest."""
    fresh, rest, rest_q = [], ([], [], []), []
    offset = 0
    for row, prefix, extend in zip(rows, prefixes, extends, strict=True):
        if prefix == 0 and sliding_window is None:
            fresh.append((offset, extend, req_to_token[row, :extend]))
        elif extend:
            for part, value in zip(rest, (row, prefix, extend), strict=True):
                part.append(value)
            rest_q.extend(range(offset, offset + extend))
        offset += extend
    if not rest_q:
        return CpuPrefillPlan(sliding_window, fresh, None, None, None)
    rest_plan = plan_extend(req_to_token, *rest, shape, sliding_window=sliding_window)
    return CpuPrefillPlan(sliding_window, fresh, torch.tensor(rest_q), rest, rest_plan)


def run_prefill(
    q: Tensor, k_buffer: KVBuffer, v_buffer: KVBuffer, req_to_token: Tensor, plan: CpuPrefillPlan,
    sm_scale: float, logit_cap: float | None,
) -> Tensor:
    """``[T, Hq, D]`` in ``q.dtype``: causal attention per fresh request (float32, as the
    reference computes), the reference for the rest."""
    out = torch.empty_like(q)
    for first, num, slots in plan.fresh:
        k = gather_rows(k_buffer, slots).transpose(0, 1)[None]
        v = gather_rows(v_buffer, slots).transpose(0, 1)[None]
        rows = q[first : first + num].float()
        out[first : first + num] = _causal(rows, k, v, sm_scale, logit_cap).to(q.dtype)
    if plan.rest_q_rows is not None:
        out[plan.rest_q_rows] = extend_attention(
            q[plan.rest_q_rows], k_buffer, v_buffer, req_to_token, *plan.rest,
            sm_scale=sm_scale, sliding_window=plan.sliding_window, logit_cap=logit_cap,
            plan=plan.rest_plan,
        )  # fmt: skip
    return out


def _causal(q: Tensor, k: Tensor, v: Tensor, sm_scale: float, logit_cap: float | None) -> Tensor:
    """One request's causal attention: q ``[n, Hq, D]``, k/v ``[1, Hkv, n, D]`` -> ``[n, Hq, D]``."""
    if logit_cap is None:
        attn = F.scaled_dot_product_attention(q.transpose(0, 1)[None], k, v, is_causal=True,
                                              scale=sm_scale, enable_gqa=True)  # fmt: skip
        return attn[0].transpose(0, 1)
    num = q.shape[0]
    visible = torch.ones(num, num, dtype=torch.bool).tril()[None]
    return attend(q[None], k, v, visible, sm_scale, logit_cap)[0]
