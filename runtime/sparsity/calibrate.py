"""Offline calibration: run text through the model and rank each KV head's channels.

A channel c of kv head h scores ``sum over the query heads g of h of mean|q_gc| * mean|k_hc|``
over the calibration tokens (q and k after RoPE, as attention sees them and the KV pool
stores them): the mean of ``|q_gc * k_hc|`` over every (query, key) pair, the channel's share
of the q . k products. Double Sparsity's label cache keeps the top-ranked channels.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sglc.runtime.models.attention import DenseCausalAttention
from sglc.runtime.models.loader import load_model_dir, read_hf_config
from sglc.runtime.sparsity.calibration import Calibration, ModelIdentity


class _RecordingAttention(DenseCausalAttention):
    """Dense causal attention that adds each layer's per-channel sums of |q| and |k|."""

    def __init__(self, seq_len: int, q_sums: list[torch.Tensor], k_sums: list[torch.Tensor]):
        super().__init__(1, seq_len)
        self.q_sums, self.k_sums = q_sums, k_sums

    def attend(self, layer_id, q, k, v, *, sm_scale, sliding_window):  # noqa: D102
        self.q_sums[layer_id] += q.float().abs().sum(0)
        self.k_sums[layer_id] += k.float().abs().sum(0)
        return super().attend(layer_id, q, k, v, sm_scale=sm_scale, sliding_window=sliding_window)


@torch.inference_mode()
def calibrate(model_path: str | Path, token_ids: list[int], *, data: str,
              max_seq_len: int = 512) -> Calibration:
    """Rank every layer's and KV head's channels over `token_ids` (run in pieces of at most
    `max_seq_len` tokens, and at most the model's context length). `data` says where the
    tokens came from (recorded in the file)."""
    path = Path(model_path)
    hf_config = read_hf_config(path)
    loaded = load_model_dir(path, dtype="float32", device="cpu", load_tokenizer=False)
    cfg = loaded.config
    if not token_ids:
        raise ValueError("calibration needs at least one token")
    q_sums = [torch.zeros(cfg.num_heads, cfg.head_dim) for _ in range(cfg.num_layers)]
    k_sums = [torch.zeros(cfg.num_kv_heads, cfg.head_dim) for _ in range(cfg.num_layers)]
    piece = min(max_seq_len, cfg.max_position_embeddings)
    for start in range(0, len(token_ids), piece):
        ids = torch.tensor(token_ids[start:start + piece], dtype=torch.int64)
        attn = _RecordingAttention(len(ids), q_sums, k_sums)
        loaded.model(ids, torch.arange(len(ids)), attn)
    group = cfg.num_heads // cfg.num_kv_heads
    channels, importance = [], []
    for q_sum, k_sum in zip(q_sums, k_sums, strict=True):
        q_mean = q_sum.view(cfg.num_kv_heads, group, cfg.head_dim) / len(token_ids)
        score = q_mean.sum(1) * (k_sum / len(token_ids))  # [Hkv, D]
        ranked = score.argsort(dim=1, descending=True, stable=True)
        channels.append(tuple(tuple(row) for row in ranked.tolist()))
        importance.append(tuple(tuple(row) for row in score.gather(1, ranked).tolist()))
    return Calibration(ModelIdentity.of(path, hf_config), tuple(channels), tuple(importance),
                       len(token_ids), data)


def default_model_tokens(tokenizer, num_tokens: int, seed: int = 0) -> list[int]:
    """At least `num_tokens` tokens of the default model's own training conversations
    (the seeded generator it was trained on, train split), in the chat format it learned."""
    from sglc.training.data import iter_examples
    from sglc.training.tokenizer import render_chat

    ids: list[int] = []
    for example in iter_examples(seed, "train"):
        if len(ids) >= num_tokens:
            break
        ids += tokenizer.encode(render_chat(list(example.messages)), add_special_tokens=False)
    return ids[:num_tokens]
