"""Double Sparsity over a whole sequence at once, as masks: what a request's decode steps
compute, teacher-forced (for held-out loss, and to check the engine's decode path).

Positions before `num_dense` (the prompt, which the engine prefills densely) attend to every
earlier token; each later position i (a decode step) attends to the tokens
`sparse_decode_attention` would select over keys 0..i: the best by label scores, the most
recent always among them, all of them when the selection covers the context.
"""

from __future__ import annotations

import math

import torch

from sglc.runtime.models.attention import BaseAttention
from sglc.runtime.sparsity.decode import NUM_RECENT_TOKENS, LabelCache, num_channels


class SparseCausalAttention(BaseAttention):
    """One sequence of `seq_len` tokens, no KV cache; rows from `num_dense` on attend to
    their selected tokens only (`ratios`: token_ratio, channel_ratio)."""

    def __init__(self, labels: LabelCache, seq_len: int, num_dense: int,
                 ratios: tuple[float, float]) -> None:
        self.labels, self.seq_len, self.num_dense = labels, seq_len, num_dense
        self.token_ratio = ratios[0]
        self.num_channels = num_channels(ratios[1], labels.head_dim)

    def attend(self, layer_id, q, k, v, *, sm_scale, sliding_window):  # noqa: D102
        keep = self._keep(layer_id, q.float(), k.float(), sliding_window)  # [Hkv, T, T]
        num_kv_heads = k.shape[1]
        group = q.shape[1] // num_kv_heads
        qh = q.float().view(-1, num_kv_heads, group, q.shape[2]).permute(1, 2, 0, 3)
        scores = torch.matmul(qh, k.float().permute(1, 2, 0)[:, None]) * sm_scale
        scores = scores.masked_fill(~keep[:, None], float("-inf"))  # [Hkv, G, T, T]
        out = torch.matmul(torch.softmax(scores, dim=-1), v.float().permute(1, 0, 2)[:, None])
        return out.permute(2, 0, 1, 3).reshape(q.shape).to(q.dtype)

    def _keep(self, layer_id: int, q: torch.Tensor, k: torch.Tensor,
              window: int | None) -> torch.Tensor:
        t, num_kv_heads = self.seq_len, k.shape[1]
        pos = torch.arange(t)
        visible = pos[None, :] <= pos[:, None]
        if window is not None:
            visible &= pos[None, :] > pos[:, None] - window
        channels = self.labels.channels[layer_id][:, : self.num_channels].cpu()  # [Hkv, c]
        group = q.shape[1] // num_kv_heads
        q_labels = torch.gather(q.view(t, num_kv_heads, group, -1), 3,
                                channels[None, :, None].expand(t, -1, group, -1))
        k_labels = torch.gather(k, 2, channels[None].expand(t, -1, -1))
        approx = torch.einsum("ihgc,jhc->hgij", q_labels, k_labels).amax(dim=1)  # [Hkv, T, T]
        num_visible = visible.sum(1)
        count = torch.tensor([max(self.labels.min_tokens, math.ceil(self.token_ratio * n))
                              for n in num_visible.tolist()])
        distance = pos[:, None] - pos[None, :]
        recent = visible & (distance < count.clamp(max=NUM_RECENT_TOKENS)[:, None])
        approx = approx.masked_fill(recent, float("inf")).masked_fill(~visible, float("-inf"))
        rank = approx.argsort(dim=-1, descending=True, stable=True).argsort(dim=-1)
        chosen = visible & (rank < count[:, None])
        dense = (pos < self.num_dense) | (count >= num_visible)
        return torch.where(dense[None, :, None], visible[None], chosen)
