"""The cost of answering a request with the model, which GDSF and LEC weigh entries by.

`flops` (the default) is an estimate from the model's shape and the request's tokens, the
same on every run; `latency` is the time the request took, submit to last sample, as
measured (it includes waiting in a batch: a busy engine makes every entry costlier).
"""

from __future__ import annotations

from dataclasses import dataclass

COST_KINDS = ("flops", "latency")


@dataclass(frozen=True)
class FlopsModel:
    """A decoder's shape, as the FLOPs estimate needs it."""

    num_params: int  # all parameters (embeddings counted: a small overestimate)
    num_layers: int
    attention_width: int  # query heads x head dim

    def request_flops(self, num_prompt_tokens: int, num_output_tokens: int) -> float:
        """2 FLOPs per parameter per token, plus causal attention: QK^T and the weighted
        sum of V, 2 x 2 x width FLOPs per (query, key) pair in each layer."""
        tokens = num_prompt_tokens + num_output_tokens
        pairs = tokens * (tokens + 1) / 2
        return 2.0 * self.num_params * tokens + 4.0 * self.num_layers * self.attention_width * pairs
