"""The Llama family (Llama 2/3, Mistral, Qwen2, Qwen3) over the ops in sglc.kernels.

Parameter names equal Hugging Face's, so `state_dict()` loads and saves HF checkpoints as
they are. Differences between the members are config flags (`ModelConfig`): qkv bias
(Qwen2), per-head q/k RMSNorm (Qwen3), sliding windows (Mistral, Qwen), rope scaling,
tied embeddings.
"""

from __future__ import annotations

import torch
from torch import nn

from sglc.kernels import KernelOps, build_rope_cache, get_ops
from sglc.runtime.models.attention import BaseAttention, DenseCausalAttention
from sglc.runtime.models.config import ModelConfig
from sglc.runtime.models.lora import LoraBatch


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float, ops: KernelOps) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps
        self.ops = ops

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None):
        return self.ops.rms_norm(x, self.weight, self.eps, residual)


class LlamaAttention(nn.Module):
    def __init__(self, cfg: ModelConfig, layer_id: int, ops: KernelOps) -> None:
        super().__init__()
        self.cfg, self.layer_id, self.ops = cfg, layer_id, ops
        bias = cfg.attention_bias
        # MixAttention: a layer that reads an earlier layer's K/V has no k/v projections
        self.owns_kv = cfg.kv_source(layer_id) is None
        self.q_proj = nn.Linear(cfg.hidden_size, cfg.q_size, bias=bias)
        if self.owns_kv:
            self.k_proj = nn.Linear(cfg.hidden_size, cfg.kv_size, bias=bias)
            self.v_proj = nn.Linear(cfg.hidden_size, cfg.kv_size, bias=bias)
        self.o_proj = nn.Linear(cfg.q_size, cfg.hidden_size, bias=False)
        if cfg.qk_norm:
            self.q_norm = RMSNorm(cfg.head_dim, cfg.rms_norm_eps, ops)
            if self.owns_kv:
                self.k_norm = RMSNorm(cfg.head_dim, cfg.rms_norm_eps, ops)
        self.sm_scale = cfg.head_dim**-0.5
        self.sliding_window = cfg.sliding_windows[layer_id]

    def fuse(self) -> None:
        """Inference: one q|k|v matmul instead of three (the HF-named weights go away)."""
        if not self.owns_kv:
            return
        self.qkv_proj = _fused_linear(self.q_proj, self.k_proj, self.v_proj)
        del self.q_proj, self.k_proj, self.v_proj

    def _project(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """q, k, v of the rows `x`; k and v are None in a layer that reads another's K/V."""
        cfg = self.cfg
        if hasattr(self, "qkv_proj"):
            return self.qkv_proj(x).split([cfg.q_size, cfg.kv_size, cfg.kv_size], dim=-1)
        if not self.owns_kv:
            return self.q_proj(x), None, None
        return self.q_proj(x), self.k_proj(x), self.v_proj(x)

    def forward(
        self, x: torch.Tensor, positions: torch.Tensor, rope: torch.Tensor, attn: BaseAttention,
        keep: torch.Tensor | None = None, lora: LoraBatch | None = None,
    ) -> torch.Tensor:
        """Attention output rows `keep` (all rows if None); K/V of every row reach the cache.
        `lora`: the adapters' deltas join each adapted projection's output. A layer that
        reads an earlier layer's K/V (MixAttention) hands `attn` no k/v of its own."""
        cfg, n = self.cfg, x.shape[0]
        q, k, v = self._project(x)
        if lora is not None:
            q = lora.apply(self.layer_id, "q_proj", x, q)
        q = q.reshape(n, cfg.num_heads, cfg.head_dim)
        if k is None:
            q = self.q_norm(q) if cfg.qk_norm else q
            # the ops rotate q and k together; one head of q stands in for the absent k
            q = self.ops.apply_rope(q, q[:, :1], positions, rope)[0]
        else:
            if lora is not None:
                k = lora.apply(self.layer_id, "k_proj", x, k)
                v = lora.apply(self.layer_id, "v_proj", x, v)
            k = k.reshape(n, cfg.num_kv_heads, cfg.head_dim)
            v = v.reshape(n, cfg.num_kv_heads, cfg.head_dim)
            if cfg.qk_norm:
                q, k = self.q_norm(q), self.k_norm(k)
            q, k = self.ops.apply_rope(q, k, positions, rope)
        o = attn.attend(
            self.layer_id, q, k, v, sm_scale=self.sm_scale, sliding_window=self.sliding_window
        )
        o = o.reshape(n, cfg.q_size)
        if keep is not None:
            o = o.index_select(0, keep)
        out = self.o_proj(o)
        if lora is not None:
            out = lora.apply(self.layer_id, "o_proj", o, out, kept=keep is not None)
        return out


class LlamaMLP(nn.Module):
    def __init__(self, cfg: ModelConfig, ops: KernelOps, intermediate_size: int | None = None,
                 layer_id: int = 0) -> None:
        super().__init__()
        self.layer_id = layer_id  # for LoRA weights
        size = intermediate_size or cfg.intermediate_size
        self.gate_proj = nn.Linear(cfg.hidden_size, size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, size, bias=False)
        self.down_proj = nn.Linear(size, cfg.hidden_size, bias=False)
        self.ops = ops

    def fuse(self) -> None:
        """Inference: one gate|up matmul feeding silu_and_mul directly."""
        self.gate_up_proj = _fused_linear(self.gate_proj, self.up_proj)
        del self.gate_proj, self.up_proj

    def forward(self, x: torch.Tensor, lora: LoraBatch | None = None,
                kept: bool = False) -> torch.Tensor:
        """`lora`: add the adapters' deltas (`kept`: `x` holds the last layer's kept rows)."""
        if hasattr(self, "gate_up_proj"):
            gate_up = self.gate_up_proj(x)
        else:
            gate_up = torch.cat([self.gate_proj(x), self.up_proj(x)], dim=-1)
        if lora is None:
            return self.down_proj(self.ops.silu_and_mul(gate_up))
        gate, up = gate_up.chunk(2, dim=-1)
        gate_up = torch.cat([lora.apply(self.layer_id, "gate_proj", x, gate, kept),
                             lora.apply(self.layer_id, "up_proj", x, up, kept)], dim=-1)
        h = self.ops.silu_and_mul(gate_up)
        return lora.apply(self.layer_id, "down_proj", h, self.down_proj(h), kept)


def _fused_linear(*parts: nn.Linear) -> nn.Linear:
    """One Linear computing the concatenated outputs of `parts` (weights copied once)."""
    first = parts[0]
    fused = nn.Linear(
        first.in_features, sum(p.out_features for p in parts), bias=first.bias is not None,
        device=first.weight.device, dtype=first.weight.dtype,
    )
    with torch.no_grad():
        fused.weight.copy_(torch.cat([p.weight for p in parts]))
        if first.bias is not None:
            fused.bias.copy_(torch.cat([p.bias for p in parts]))
    return fused.requires_grad_(first.weight.requires_grad)


class LlamaDecoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig, layer_id: int, ops: KernelOps) -> None:
        super().__init__()
        self.self_attn = LlamaAttention(cfg, layer_id, ops)
        self.add_feed_forward(cfg, layer_id, ops)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, ops)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, ops)

    def add_feed_forward(self, cfg: ModelConfig, layer_id: int, ops: KernelOps) -> None:
        """Create the block after attention under its Hugging Face name (`mlp` here)."""
        self.mlp = LlamaMLP(cfg, ops, layer_id=layer_id)

    @property
    def feed_forward(self) -> nn.Module:
        return self.mlp

    def fuse(self) -> None:
        self.self_attn.fuse()
        self.feed_forward.fuse()

    def forward(self, x, residual, positions, rope, attn, keep=None, lora=None):
        """`keep` (row indices) drops the other rows after attention: the last layer needs
        only the rows whose logits are wanted, once every row's K/V is cached. `lora`: the
        batch's adapters (a LoraBatch), None for the base model alone."""
        if residual is None:
            residual = x
            h = self.input_layernorm(x)
        else:
            h, residual = self.input_layernorm(x, residual)
        h = self.self_attn(h, positions, rope, attn, keep, lora)
        if keep is not None:
            residual = residual.index_select(0, keep)
        h, residual = self.post_attention_layernorm(h, residual)
        if lora is None:
            return self.feed_forward(h), residual
        return self.feed_forward(h, lora, keep is not None), residual


class LlamaModel(nn.Module):
    def __init__(self, cfg: ModelConfig, ops: KernelOps,
                 layer_cls: type[LlamaDecoderLayer] = LlamaDecoderLayer) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(layer_cls(cfg, i, ops) for i in range(cfg.num_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, ops)


class LlamaForCausalLM(nn.Module):
    """`forward(input_ids, positions, attn, keep)` over flattened tokens -> final hidden
    states (of rows `keep`);
    `compute_logits(hidden)` -> float32 logits."""

    decoder_layer_cls: type[LlamaDecoderLayer] = LlamaDecoderLayer

    def __init__(self, cfg: ModelConfig, ops: KernelOps | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.ops = ops or get_ops("torch")
        self.model = LlamaModel(cfg, self.ops, self.decoder_layer_cls)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.tie_weights()
        self.register_buffer("rope_cache", self.build_rope(), persistent=False)
        self.lm_head_t: torch.Tensor | None = None  # CPU inference: see fuse_projections

    def tie_weights(self) -> None:
        if self.cfg.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def build_rope(self, device: torch.device | str | None = None) -> torch.Tensor:
        cfg = self.cfg
        return build_rope_cache(
            cfg.head_dim, cfg.max_position_embeddings, cfg.rope_theta, cfg.rope_scaling,
            device=device,
        )

    def forward(
        self, input_ids: torch.Tensor, positions: torch.Tensor, attn: BaseAttention,
        keep: torch.Tensor | None = None, lora: LoraBatch | None = None,
    ) -> torch.Tensor:
        """Final hidden states of rows `keep` of the flattened tokens (all if None). Only
        the last layer's attention output projection and MLP are spared for the others:
        every row's K/V is still written to the cache by every layer. `lora`: which LoRA
        adapter each row uses (None: the base model for all)."""
        x = self.model.embed_tokens(input_ids)
        residual = None
        last = len(self.model.layers) - 1
        for i, layer in enumerate(self.model.layers):
            rows = keep if i == last else None
            x, residual = layer(x, residual, positions, self.rope_cache, attn, rows, lora)
        x, _ = self.model.norm(x, residual)
        return x

    def fuse_projections(self) -> None:
        """Merge q/k/v and gate/up projections for inference. After this the parameter
        names no longer match Hugging Face's; load weights first, never save afterwards.

        On CPU the lm_head also gets a transposed contiguous copy ``[hidden, vocab]``:
        MKL computes ``x @ W^T`` for a wide W well below its speed on ``x @ Wt`` (the
        narrower projections are even), and the lm_head is a large share of a small
        model's decode time."""
        for layer in self.model.layers:
            layer.fuse()
        weight = self.lm_head.weight
        if weight.device.type == "cpu":
            self.lm_head_t = weight.detach().t().contiguous()

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.lm_head_t is not None:
            return (hidden @ self.lm_head_t).float()
        return self.lm_head(hidden).float()

    def forward_dense(self, input_ids: torch.Tensor,
                      keep: torch.Tensor | None = None) -> torch.Tensor:
        """Plain causal LM over `[B, T]` ids (no cache); logits `[B, T, V]`, or `[len(keep), V]`
        for the flattened positions `keep` only (training: the positions with a label).
        Differentiable."""
        b, t = input_ids.shape
        positions = torch.arange(t, device=input_ids.device).repeat(b)
        attn = DenseCausalAttention(b, t, self.cfg.kv_sources)
        hidden = self(input_ids.reshape(-1), positions, attn, keep)
        logits = self.compute_logits(hidden)
        return logits if keep is not None else logits.view(b, t, -1)
