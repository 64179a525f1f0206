"""Mixture-of-experts members of the Llama family: Mixtral, Qwen2-MoE, Qwen3-MoE.

Attention, norms and embeddings are Llama's; a sparse layer's MLP becomes a router (`gate`)
that picks the top-k of `num_experts` gated MLPs per token, computed together by the fused
MoE op (`KernelOps.fused_moe`), plus, in Qwen2-MoE, a shared expert scaled by a sigmoid gate.
Parameter names are Hugging Face's (Mixtral: `block_sparse_moe.experts.{e}.w1|w3|w2`;
Qwen: `mlp.experts.{e}.gate_proj|up_proj|down_proj`, `mlp.shared_expert*`); `fuse()` stacks
the experts into the op's ``w13 [E, 2I, H]`` (gate || up) and ``w2 [E, H, I]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sglc.kernels import KernelOps
from sglc.runtime.models.config import ModelConfig, MoeConfig
from sglc.runtime.models.llama import LlamaDecoderLayer, LlamaForCausalLM, LlamaMLP

# each expert's (gate, up, down) projection names in the checkpoints of an architecture
_EXPERT_NAMES = {
    "MixtralForCausalLM": ("w1", "w3", "w2"),
    "Qwen2MoeForCausalLM": ("gate_proj", "up_proj", "down_proj"),
    "Qwen3MoeForCausalLM": ("gate_proj", "up_proj", "down_proj"),
}


class Expert(nn.Module):
    """One expert's gated MLP, holding its three projections under the checkpoint's names."""

    def __init__(self, hidden: int, intermediate: int, names: tuple[str, str, str]) -> None:
        super().__init__()
        self.names = names
        gate, up, down = names
        setattr(self, gate, nn.Linear(hidden, intermediate, bias=False))
        setattr(self, up, nn.Linear(hidden, intermediate, bias=False))
        setattr(self, down, nn.Linear(intermediate, hidden, bias=False))

    def weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(gate || up ``[2I, H]``, down ``[H, I]``)."""
        gate, up, down = (getattr(self, n).weight for n in self.names)
        return torch.cat([gate, up]), down


class SparseMoeBlock(nn.Module):
    """Top-k routing over the experts: softmax of the router logits in float32, the k
    largest, renormalised when `norm_topk_prob`; then the fused op over the chosen experts."""

    def __init__(self, cfg: ModelConfig, moe: MoeConfig, ops: KernelOps) -> None:
        super().__init__()
        self.moe, self.ops = moe, ops
        hidden = cfg.hidden_size
        self.gate = nn.Linear(hidden, moe.num_experts, bias=False)
        names = _EXPERT_NAMES[cfg.architecture]
        self.experts = nn.ModuleList(
            Expert(hidden, moe.expert_intermediate_size, names) for _ in range(moe.num_experts)
        )
        self.has_shared_expert = bool(moe.shared_expert_intermediate_size)
        if self.has_shared_expert:
            self.shared_expert = LlamaMLP(cfg, ops, moe.shared_expert_intermediate_size)
            self.shared_expert_gate = nn.Linear(hidden, 1, bias=False)
        # the stacked experts, once fused: w13 [E, 2I, H], w2 [E, H, I]
        self.register_buffer("w13", None, persistent=False)
        self.register_buffer("w2", None, persistent=False)

    def fuse(self) -> None:
        """Inference: stack the experts for the fused op (the per-expert weights go away)."""
        w13, w2 = zip(*(expert.weights() for expert in self.experts), strict=True)
        self.w13, self.w2 = torch.stack(w13).detach(), torch.stack(w2).detach()
        del self.experts
        if self.has_shared_expert:
            self.shared_expert.fuse()

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(expert ids ``[T, k]``, float32 weights ``[T, k]``) of each token."""
        probs = torch.softmax(F.linear(x, self.gate.weight).float(), dim=-1)
        weights, ids = torch.topk(probs, self.moe.top_k, dim=-1)
        if self.moe.norm_topk_prob:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        return ids, weights

    def forward(self, x: torch.Tensor, lora: object = None, kept: bool = False) -> torch.Tensor:
        """Routed experts (+ the shared one); `lora` is ignored: adapters of MoE models are
        refused on the MLP when they load."""
        ids, weights = self.route(x)
        if self.w13 is None:  # unfused (training, re-saving): stack on the fly
            w13, w2 = (torch.stack(w) for w in zip(*(e.weights() for e in self.experts),
                                                    strict=True))
        else:
            w13, w2 = self.w13, self.w2
        out = self.ops.fused_moe(x, w13, w2, ids, weights)
        if self.has_shared_expert:
            out = out + self.shared_expert(x) * torch.sigmoid(self.shared_expert_gate(x))
        return out


class MoeDecoderLayer(LlamaDecoderLayer):
    """A Llama layer whose MLP is sparse where the config says so (`sparse_layers`)."""

    def add_feed_forward(self, cfg: ModelConfig, layer_id: int, ops: KernelOps) -> None:
        moe = cfg.moe
        assert moe is not None
        self.feed_forward_name = "mlp"
        if not moe.sparse_layers[layer_id]:
            self.mlp = LlamaMLP(cfg, ops, layer_id=layer_id)
        elif cfg.architecture == "MixtralForCausalLM":
            self.feed_forward_name = "block_sparse_moe"
            self.block_sparse_moe = SparseMoeBlock(cfg, moe, ops)
        else:
            self.mlp = SparseMoeBlock(cfg, moe, ops)

    @property
    def feed_forward(self) -> nn.Module:
        return getattr(self, self.feed_forward_name)


class MoeForCausalLM(LlamaForCausalLM):
    """Mixtral, Qwen2-MoE and Qwen3-MoE: `LlamaForCausalLM` with `MoeDecoderLayer`s."""

    decoder_layer_cls = MoeDecoderLayer
