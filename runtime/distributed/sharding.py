"""Megatron-style sharding of the Llama family over `size` ranks.

    q/k/v, gate/up   column-parallel: rank r holds its heads' rows (its slice of the
                     intermediate size); no communication
    o_proj, down     row-parallel: rank r holds the matching input columns; the partial
                     outputs are summed over ranks (all-reduce)
    embed_tokens     vocab-parallel: rank r holds rows [r*Vr, (r+1)*Vr) (Vr = ceil(V/size),
                     the last shard zero-padded); a token's row comes from the rank holding
                     it, the others add zeros (all-reduce)
    lm_head          vocab-parallel the same way; the logits shards are all-gathered and
                     the padding cut off
    norms, rope      replicated

KV heads are split across ranks; with fewer KV heads than ranks, each rank holds the one
its query heads read (`size / num_kv_heads` ranks share, i.e. replicate, each KV head).

The sharded model is the unchanged Llama model built with the shard's sizes
(`local_config`), its weights read slice by slice from the safetensors files (`read`),
then `wrap`ped: the row-parallel layers and the embedding get their collective.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import nn

from sglc.runtime.distributed.comm import Communicator
from sglc.runtime.models.config import ModelConfig, UnsupportedModel

# checkpoint name suffix -> (dimension sliced, what is split)
_SPLITS = {
    "self_attn.q_proj.weight": (0, "q"), "self_attn.q_proj.bias": (0, "q"),
    "self_attn.k_proj.weight": (0, "kv"), "self_attn.k_proj.bias": (0, "kv"),
    "self_attn.v_proj.weight": (0, "kv"), "self_attn.v_proj.bias": (0, "kv"),
    "self_attn.o_proj.weight": (1, "q"),
    "mlp.gate_proj.weight": (0, "ffn"), "mlp.up_proj.weight": (0, "ffn"),
    "mlp.down_proj.weight": (1, "ffn"),
    "embed_tokens.weight": (0, "vocab"), "lm_head.weight": (0, "vocab"),
}


def check_shardable(cfg: ModelConfig, size: int) -> None:
    """UnsupportedModel unless `cfg` splits evenly over `size` ranks."""
    where = f"tp_size={size}"
    if cfg.moe is not None:
        raise UnsupportedModel(f"{cfg.architecture} with {where}: mixture-of-experts models "
                               "are not sharded yet; use tp_size=1 (or dp_size)")
    if cfg.num_heads % size:
        raise UnsupportedModel(f"{where} must divide num_attention_heads ({cfg.num_heads})")
    kv = cfg.num_kv_heads
    if (kv >= size and kv % size) or (kv < size and size % kv):
        raise UnsupportedModel(f"{where} and num_key_value_heads ({kv}): one must divide "
                               "the other")
    if cfg.intermediate_size % size:
        raise UnsupportedModel(f"{where} must divide intermediate_size "
                               f"({cfg.intermediate_size})")


@dataclasses.dataclass(frozen=True)
class TPShard:
    """Rank `rank`'s shard of model `cfg` split over `size` ranks (a loader WeightShard)."""

    cfg: ModelConfig
    rank: int
    size: int

    def __post_init__(self) -> None:
        check_shardable(self.cfg, self.size)

    @property
    def num_local_heads(self) -> int:
        return self.cfg.num_heads // self.size

    @property
    def num_local_kv_heads(self) -> int:
        return max(self.cfg.num_kv_heads // self.size, 1)

    @property
    def local_vocab_size(self) -> int:
        return math.ceil(self.cfg.vocab_size / self.size)

    def local_config(self, cfg: ModelConfig) -> ModelConfig:
        return dataclasses.replace(
            cfg, num_heads=self.num_local_heads, num_kv_heads=self.num_local_kv_heads,
            intermediate_size=cfg.intermediate_size // self.size,
            vocab_size=self.local_vocab_size,
        )

    def _range(self, part: str) -> tuple[int, int]:
        """This rank's [start, end) along the split dimension of a `part` tensor."""
        cfg, r = self.cfg, self.rank
        if part == "q":
            n = self.num_local_heads * cfg.head_dim
            return r * n, (r + 1) * n
        if part == "kv":
            n = self.num_local_kv_heads * cfg.head_dim
            # rank r's query heads read KV head (block) r * num_kv_heads // size
            block = r * cfg.num_kv_heads // self.size if cfg.num_kv_heads < self.size else r
            return block * n, (block + 1) * n
        if part == "ffn":
            n = cfg.intermediate_size // self.size
            return r * n, (r + 1) * n
        n = self.local_vocab_size
        return r * n, min((r + 1) * n, cfg.vocab_size)

    def read(self, file: Any, name: str) -> torch.Tensor:
        split = next((s for suffix, s in _SPLITS.items() if name.endswith(suffix)), None)
        if split is None:
            return file.get_tensor(name)
        dim, part = split
        start, end = self._range(part)
        piece = file.get_slice(name)
        tensor = piece[start:end] if dim == 0 else piece[:, start:end]
        if part == "vocab" and end - start < self.local_vocab_size:  # the last shard's padding
            pad = tensor.new_zeros(self.local_vocab_size - (end - start), tensor.shape[1])
            tensor = torch.cat([tensor, pad])
        return tensor

    def wrap(self, model: nn.Module, comm: Communicator) -> TPCausalLM:
        """The loaded (and fused) shard, with its collectives in place."""
        for layer in model.model.layers:
            layer.self_attn.o_proj = RowParallel(layer.self_attn.o_proj, comm)
            layer.mlp.down_proj = RowParallel(layer.mlp.down_proj, comm)
        start = self.rank * self.local_vocab_size
        model.model.embed_tokens = VocabParallelEmbedding(model.model.embed_tokens, start, comm)
        return TPCausalLM(model, self.cfg.vocab_size, comm)


class RowParallel(nn.Module):
    """A layer whose input is split over ranks: each computes a partial sum of the output."""

    def __init__(self, inner: nn.Module, comm: Communicator) -> None:
        super().__init__()
        self.inner, self.comm = inner, comm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.comm.all_reduce(self.inner(x))


class VocabParallelEmbedding(nn.Module):
    """This rank's rows [start, start + rows) of the embedding; the others' tokens get
    zeros here, their rows from the rank holding them."""

    def __init__(self, inner: nn.Embedding, start: int, comm: Communicator) -> None:
        super().__init__()
        self.inner, self.start, self.comm = inner, start, comm

    @property
    def weight(self) -> torch.Tensor:
        return self.inner.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        local = ids - self.start
        outside = (local < 0) | (local >= self.inner.num_embeddings)
        out = self.inner(local.masked_fill(outside, 0))
        return self.comm.all_reduce(out.masked_fill(outside[:, None], 0))


class TPCausalLM(nn.Module):
    """A rank's sharded causal LM: `forward` as the Llama model's (collectives inside),
    `compute_logits` the whole vocabulary's logits, gathered from every rank."""

    def __init__(self, inner: nn.Module, vocab_size: int, comm: Communicator) -> None:
        super().__init__()
        self.inner, self.vocab_size, self.comm = inner, vocab_size, comm
        self.cfg = inner.cfg  # the shard's sizes (its KV pool is built from them)

    def forward(self, *args: Any) -> torch.Tensor:
        return self.inner(*args)

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        local = self.inner.compute_logits(hidden)
        return self.comm.all_gather_last(local)[..., : self.vocab_size]
