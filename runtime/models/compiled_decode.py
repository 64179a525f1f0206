"""The CPU decode step as one compiled call (`kernels/cpu_sources_decode_step.py`).

On a CPU, a small model's decode step costs more in calling its ops than in running them:
each layer is a dozen Python calls. `CompiledDecode` registers a Llama model's tensors and
the KV pool's buffers with the compiled stack once; `run` then computes a decode batch's
final hidden states in one call, through the same kernels the per-op path calls, in the same
order (the tests compare the two). llama.cpp runs a step the same way, as one C graph.

`CompiledDecode.build` returns None, with the reason, for what the stack does not cover:
other backends or dtypes, quantized K/V, a pool whose buffers are views of a shared arena
(Prism), q/k norms, sliding windows, KV shared across layers, other layer classes (MoE,
tensor-parallel shards), and models whose layers have hooks (weight offloading streams each
layer's weights in a pre-forward hook). The runner
also keeps the per-op path for batches with LoRA adapters, H2O scoring or Double Sparsity.
"""

from __future__ import annotations

import logging
import weakref

import torch
from torch import nn

from sglc.kernels.cpu_build import extension
from sglc.kernels.cpu_decode_attention import cpu_decode_attention
from sglc.kernels.weight_quant import GEMV_ROWS
from sglc.runtime.mem.kv_pool import KVPool
from sglc.runtime.models.llama import (
    LlamaAttention,
    LlamaDecoderLayer,
    LlamaForCausalLM,
    LlamaMLP,
    RMSNorm,
)
from sglc.runtime.quant.linear import QuantizedLinear

_EMPTY = torch.empty(0)
log = logging.getLogger(__name__)


class CompiledDecode:
    """A model's decoder stack registered with the compiled decode step."""

    def __init__(self, model: LlamaForCausalLM, kv_pool: KVPool) -> None:
        cfg = model.cfg
        layers = list(model.model.layers)
        bits, groups = _weight_formats(layers)
        tensors: list[torch.Tensor] = []
        for i, layer in enumerate(layers):
            attn, mlp = layer.self_attn, layer.mlp
            tensors += [layer.input_layernorm.weight, layer.post_attention_layernorm.weight]
            tensors += _weight(attn.qkv_proj) + [_or_empty(attn.qkv_proj.bias)]
            tensors += _weight(attn.o_proj) + _weight(mlp.gate_up_proj) + _weight(mlp.down_proj)
            tensors += [kv_pool.k_buffers[i], kv_pool.v_buffers[i]]
        tensors += [model.model.embed_tokens.weight, model.model.norm.weight, model.rope_cache]
        tensors += _weight(model.lm_head)
        ints = [cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim,
                layers[0].mlp.down_proj.in_features, GEMV_ROWS, bits.pop(),
                groups.pop() if groups else 0]
        with torch.no_grad():
            tensors = [t.detach() for t in tensors]
        self._ext = extension()
        self.id = self._ext.decode_stack_new(tensors, ints, [cfg.rms_norm_eps,
                                                             layers[0].self_attn.sm_scale])
        self._layers = layers
        weakref.finalize(self, self._ext.decode_stack_free, self.id)

    @classmethod
    def build(cls, model: nn.Module, kv_pool: KVPool,
              decode_attention: object) -> tuple[CompiledDecode | None, str]:
        """The compiled stack for `model` over `kv_pool`, or None and why it does not apply."""
        why = unsupported(model, kv_pool, decode_attention)
        if why:
            return None, why
        try:
            return cls(model, kv_pool), ""
        except (RuntimeError, ValueError) as exc:  # the C++ side's checks: keep the per-op path
            log.warning("compiled decode step not used: %s", exc)
            return None, f"the compiled step refused the model: {exc}"

    @property
    def usable(self) -> bool:
        """False once a layer has hooks (they would not run inside the compiled step)."""
        return not any(layer._forward_pre_hooks or layer._forward_hooks
                       for layer in self._layers)

    def run(self, input_ids: torch.Tensor, positions: torch.Tensor, slots: torch.Tensor,
            req_to_token: torch.Tensor, rows: torch.Tensor, seq_lens: torch.Tensor, *,
            logits: bool = False) -> torch.Tensor:
        """Final hidden states `[B, hidden]` of one decode token per request (B requests),
        or with `logits` their float32 logits `[B, vocab]`: the K/V of the new tokens are
        stored at `slots`, and each attends over `req_to_token[rows[b], :seq_lens[b]]`."""
        return self._ext.decode_stack_run(self.id, input_ids, positions, slots, req_to_token,
                                          rows, seq_lens, logits)


def unsupported(model: nn.Module, kv_pool: KVPool, decode_attention: object) -> str:
    """Why the compiled decode step cannot run `model` ('' when it can)."""
    if type(model) is not LlamaForCausalLM:
        return f"model class {type(model).__name__}"
    if decode_attention is not cpu_decode_attention:
        return "not the 'cpu' kernel backend"
    cfg = model.cfg
    if cfg.qk_norm or any(w is not None for w in cfg.sliding_windows) or \
            any(src is not None for src in cfg.kv_sources or ()):
        return "q/k norms, sliding windows or KV shared across layers"
    if kv_pool.kv_cache_dtype != "auto" or kv_pool.dtype != torch.float32:
        return "the KV pool is not float32"
    if not all(isinstance(b, torch.Tensor) and b.is_contiguous()
               for b in (*kv_pool.k_buffers, *kv_pool.v_buffers)):
        return "K/V buffers that are not contiguous tensors (a shared arena)"
    if model.rope_cache.dtype != torch.float32 or model.model.embed_tokens.weight.dtype != \
            torch.float32:
        return "not a float32 model"
    for layer in model.model.layers:
        if type(layer) is not LlamaDecoderLayer or type(layer.self_attn) is not LlamaAttention \
                or type(layer.mlp) is not LlamaMLP:
            return f"layer class {type(layer).__name__}"
        if not all(type(n) is RMSNorm for n in (layer.input_layernorm,
                                                 layer.post_attention_layernorm)):
            return "norm class"
        if not (hasattr(layer.self_attn, "qkv_proj") and hasattr(layer.mlp, "gate_up_proj")):
            return "projections not fused"
        for p in _projections(layer):
            if type(p) is nn.Linear:
                if p.weight.dtype != torch.float32 or p.weight.device.type != "cpu":
                    return "float weights not float32 on the CPU"
            elif type(p) is not QuantizedLinear:
                return f"projection class {type(p).__name__}"
        if layer.self_attn.o_proj.bias is not None or layer.mlp.down_proj.bias is not None:
            return "biased o/down projections"
    head = model.lm_head
    if not (type(head) is QuantizedLinear or (type(head) is nn.Linear and head.bias is None
                                               and head.weight.dtype == torch.float32)):
        return f"lm_head {type(head).__name__}"
    bits, groups = _weight_formats(model.model.layers)
    if len(bits) != 1 or len(groups) > 1:
        return "mixed weight formats"
    return ""


def _weight_formats(layers) -> tuple[set[int], set[int]]:
    """The projections' weight bits (0: float) and quantization group sizes, each once."""
    projections = [p for layer in layers for p in _projections(layer)]
    return ({p.bits if isinstance(p, QuantizedLinear) else 0 for p in projections},
            {p.group_size for p in projections if isinstance(p, QuantizedLinear)})


def _projections(layer: LlamaDecoderLayer) -> list[nn.Module]:
    return [layer.self_attn.qkv_proj, layer.self_attn.o_proj, layer.mlp.gate_up_proj,
            layer.mlp.down_proj]


def _weight(p: nn.Module) -> list[torch.Tensor]:
    if isinstance(p, QuantizedLinear):
        return [p.codes, p.scales, p.zeros]
    return [p.weight.contiguous(), _EMPTY, _EMPTY]


def _or_empty(t: torch.Tensor | None) -> torch.Tensor:
    return _EMPTY if t is None else t
