"""A plain PyTorch MixAttention model (Rajput et al., "Inference-Friendly Models With
MixAttention"), written here from the paper's description and independent of sglc's model
code: the reference the engine's MixAttention serving is checked against.

Each layer is a Llama block (RMSNorm, RoPE attention with GQA, SwiGLU MLP). A layer either
computes its own K/V or reuses the (rotated) K/V of an earlier layer, and attends over all
earlier tokens (full) or the last `window` of them (sliding). No cache: every call recomputes
the whole sequence, so greedy decoding here is as plain as it gets.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from model_fixtures import build_tokenizer
from safetensors.torch import save_file

# layers: 0 full (owns KV), 1 sliding (owns), 2 sliding reading 1, 3 full reading 0,
# 4 sliding reading the full layer 0 (a window inside a full layer's KV)
MIX_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama",
    "vocab_size": 300, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 5,
    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
    "max_position_embeddings": 512, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
    "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2,
    "layer_types": ["full_attention", "sliding_attention", "sliding_attention",
                    "full_attention", "sliding_attention"],
    "sliding_window": 8,
    "kv_source_layers": [None, None, 1, 0, 0],
}


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rotate(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    """Rotate-half RoPE of `x` [T, H, D] at `positions` [T]."""
    d = x.shape[-1]
    inv_freq = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float32) / d)
    angles = positions[:, None].float() * inv_freq[None, :]
    cos, sin = angles.cos()[:, None, :], angles.sin()[:, None, :]
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class MixAttentionReference:
    def __init__(self, cfg: dict, seed: int = 0) -> None:
        self.cfg = cfg
        g = torch.Generator().manual_seed(seed)
        h, heads, kv_heads, d = (cfg["hidden_size"], cfg["num_attention_heads"],
                                 cfg["num_key_value_heads"], cfg["head_dim"])

        def weight(*shape: int) -> torch.Tensor:  # spread-out logits: greedy ties are rare
            return torch.randn(*shape, generator=g) * 3.0 / shape[-1] ** 0.5

        def norm() -> torch.Tensor:
            return 1 + 0.1 * torch.randn(h, generator=g)

        params = {"model.embed_tokens.weight": weight(cfg["vocab_size"], h),
                  "model.norm.weight": norm(),
                  "lm_head.weight": weight(cfg["vocab_size"], h)}
        for i, src in enumerate(cfg["kv_source_layers"]):
            p = f"model.layers.{i}."
            params[p + "self_attn.q_proj.weight"] = weight(heads * d, h)
            if src is None:
                params[p + "self_attn.k_proj.weight"] = weight(kv_heads * d, h)
                params[p + "self_attn.v_proj.weight"] = weight(kv_heads * d, h)
            params[p + "self_attn.o_proj.weight"] = weight(h, heads * d)
            params[p + "mlp.gate_proj.weight"] = weight(cfg["intermediate_size"], h)
            params[p + "mlp.up_proj.weight"] = weight(cfg["intermediate_size"], h)
            params[p + "mlp.down_proj.weight"] = weight(h, cfg["intermediate_size"])
            for name in ("input_layernorm", "post_attention_layernorm"):
                params[p + name + ".weight"] = norm()
        self.weights = params

    def logits(self, ids: list[int]) -> torch.Tensor:
        """[len(ids), vocab] float32 logits of one sequence."""
        cfg, w = self.cfg, self.weights
        eps, theta = cfg["rms_norm_eps"], cfg["rope_theta"]
        heads, kv_heads, d = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
        t = len(ids)
        pos = torch.arange(t)
        x = w["model.embed_tokens.weight"][torch.tensor(ids)]
        layer_kv: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for i, src in enumerate(cfg["kv_source_layers"]):
            p = f"model.layers.{i}."
            hn = rms_norm(x, w[p + "input_layernorm.weight"], eps)
            q = rotate((hn @ w[p + "self_attn.q_proj.weight"].T).view(t, heads, d), pos, theta)
            if src is None:
                k = rotate((hn @ w[p + "self_attn.k_proj.weight"].T).view(t, kv_heads, d),
                           pos, theta)
                v = (hn @ w[p + "self_attn.v_proj.weight"].T).view(t, kv_heads, d)
                layer_kv[i] = (k, v)
            else:
                k, v = layer_kv[src]
            mask = pos[None, :] <= pos[:, None]
            if cfg["layer_types"][i] == "sliding_attention":
                mask &= pos[None, :] > pos[:, None] - cfg["sliding_window"]
            group = heads // kv_heads
            kh, vh = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
            scores = torch.einsum("qhd,khd->hqk", q, kh) / d**0.5
            probs = scores.masked_fill(~mask, float("-inf")).softmax(-1)
            o = torch.einsum("hqk,khd->qhd", probs, vh).reshape(t, heads * d)
            x = x + o @ w[p + "self_attn.o_proj.weight"].T
            hn = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
            gate = hn @ w[p + "mlp.gate_proj.weight"].T
            up = hn @ w[p + "mlp.up_proj.weight"].T
            x = x + (F.silu(gate) * up) @ w[p + "mlp.down_proj.weight"].T
        x = rms_norm(x, w["model.norm.weight"], eps)
        return x @ w["lm_head.weight"].T

    @torch.no_grad()
    def greedy(self, prompt: list[int], num: int) -> tuple[list[int], list[torch.Tensor]]:
        """`num` greedy tokens and the log-probabilities each was chosen from."""
        ids, logprobs = list(prompt), []
        for _ in range(num):
            row = self.logits(ids)[-1].log_softmax(-1)
            logprobs.append(row)
            ids.append(int(row.argmax()))
        return ids[len(prompt):], logprobs

    def save(self, path: Path, config: dict | None = None) -> Path:
        """The HF-format directory sglc loads: config.json, model.safetensors, tokenizer."""
        path.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().contiguous() for k, v in self.weights.items()},
                  str(path / "model.safetensors"), metadata={"format": "pt"})
        (path / "config.json").write_text(json.dumps(config or self.cfg, indent=2))
        build_tokenizer(self.cfg["vocab_size"]).save_pretrained(path)
        return path
