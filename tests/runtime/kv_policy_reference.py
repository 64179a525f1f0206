"""The reference for KV eviction: transformers decoding step by step with its full KV cache,
each step's query masked to the tokens the policy keeps (a masked key is a dropped one), and
H2O's scores summed from transformers' own attention probabilities."""

from __future__ import annotations

import torch


def keep_positions(policy: str, kept: list[int], budget: int, scores: torch.Tensor,
                   sinks: int, recent_ratio: float) -> list[int]:
    """The positions `policy` keeps of `kept` (sorted, more than `budget`)."""
    if policy == "window":
        sinks = min(sinks, budget - 1)
        return kept[:sinks] + kept[len(kept) - (budget - sinks):]
    num_recent = min(max(1, round(budget * recent_ratio)), budget)
    older, recent = kept[:-num_recent], kept[-num_recent:]
    ranked = sorted(older, key=lambda p: -float(scores[p]))[: budget - num_recent]
    return sorted(ranked) + recent


@torch.no_grad()
def hf_evicting_greedy(model, prompt: list[int], num: int, policy: str, budget: int, *,
                       sinks: int = 4, recent_ratio: float = 0.5) -> list[int]:
    model.config._attn_implementation = "eager"  # attention probabilities for H2O
    total = len(prompt) + num
    scores = torch.zeros(total, dtype=torch.float32)
    out = model(input_ids=torch.tensor([prompt]), use_cache=True, output_attentions=True)
    for attn in out.attentions:  # [1, H, P, P]
        scores[: len(prompt)] += attn[0].float().sum(dim=(0, 1))
    kept = list(range(len(prompt)))
    past, token, tokens = out.past_key_values, int(out.logits[0, -1].argmax()), []
    for p in range(len(prompt), total):
        tokens.append(token)
        if len(tokens) == num:
            break
        if len(kept) > budget:
            kept = keep_positions(policy, kept, budget, scores, sinks, recent_ratio)
        visible = kept + [p]
        mask = torch.full((1, 1, 1, p + 1), torch.finfo(torch.float32).min)
        mask[0, 0, 0, visible] = 0.0
        out = model(input_ids=torch.tensor([[token]]), position_ids=torch.tensor([[p]]),
                    cache=past, attention_mask=mask, use_cache=True,
                    output_attentions=True)
        for attn in out.attentions:  # [1, H, 1, p + 1]
            scores[: p + 1] += attn[0].float().sum(dim=(0, 1))
        kept = visible
        past, token = out.past_key_values, int(out.logits[0, -1].argmax())
    return tokens
