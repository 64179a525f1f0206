"""LoRA in the model's projections: which adapter each token of a forward pass uses.

The tokens of a batch are flattened in request order; consecutive requests of the same
adapter form one segment, and each adapted projection adds, per segment,
``scaling * (x @ Aᵀ) @ Bᵀ`` to its base output through the segmented shrink and expand ops
(`KernelOps.lora_shrink` / `lora_expand`), never merging weights. Requests of the base model
are segments without an adapter. The last layer computes only the rows whose logits are
wanted (`keep`), so its o_proj and MLP use the segmentation of those rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from sglc.kernels import KernelOps
from sglc.kernels.lora import NO_ADAPTER


class AdapterWeights(Protocol):
    """One (layer, module)'s adapters stacked by slot (see `sglc.runtime.lora.pool`)."""

    a: torch.Tensor  # [slots, max_rank, in]
    b: torch.Tensor  # [slots, out, max_rank]
    ranks: torch.Tensor  # [slots] int32, 0 where the slot's adapter leaves the module alone
    scalings: torch.Tensor  # [slots] float32


@dataclass(frozen=True)
class LoraSegments:
    """Rows ``seg_indptr[s] .. seg_indptr[s+1]-1`` use adapter slot ``seg_slots[s]`` (-1: none)."""

    seg_indptr: torch.Tensor
    seg_slots: torch.Tensor

    @classmethod
    def of(cls, slots: Sequence[int], num_rows: Sequence[int],
           device: torch.device) -> LoraSegments:
        """Segments of requests taking `num_rows[i]` consecutive rows with slot `slots[i]`."""
        indptr, seg_slots = [0], []
        for slot, rows in zip(slots, num_rows, strict=True):
            if rows == 0:
                continue
            if seg_slots and seg_slots[-1] == slot:
                indptr[-1] += rows
            else:
                seg_slots.append(slot)
                indptr.append(indptr[-1] + rows)
        return cls(torch.tensor(indptr, dtype=torch.int64, device=device),
                   torch.tensor(seg_slots, dtype=torch.int64, device=device))


class LoraBatch:
    """The adapters of one forward pass: `apply` adds their deltas to a projection's output."""

    def __init__(self, ops: KernelOps, weights: Mapping[tuple[int, str], AdapterWeights],
                 rows: LoraSegments, kept_rows: LoraSegments | None) -> None:
        self.ops = ops
        self.weights = weights
        self.rows = rows
        self.kept_rows = kept_rows if kept_rows is not None else rows

    def adapts(self, layer_id: int, module: str) -> bool:
        return (layer_id, module) in self.weights

    def apply(self, layer_id: int, module: str, x: torch.Tensor, out: torch.Tensor,
              kept: bool = False) -> torch.Tensor:
        """`out` (the base projection of `x`) plus each row's adapter delta; `kept`: the rows
        are the last layer's kept rows."""
        weights = self.weights.get((layer_id, module))
        if weights is None:
            return out
        seg = self.kept_rows if kept else self.rows
        y = self.ops.lora_shrink(x, weights.a, seg.seg_indptr, seg.seg_slots, weights.ranks)
        return self.ops.lora_expand(y, weights.b, seg.seg_indptr, seg.seg_slots, weights.ranks,
                                    weights.scalings, out)


__all__ = ["NO_ADAPTER", "AdapterWeights", "LoraBatch", "LoraSegments"]
