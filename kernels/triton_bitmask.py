"""Triton token-bitmask apply; contract of :func:`sglc.kernels.bitmask.apply_token_bitmask`."""

from __future__ import annotations

import triton
import triton.language as tl
from torch import Tensor

from sglc.kernels.bitmask import check_bitmask_args

_BLOCK = 1024


@triton.jit
def _apply_bitmask_kernel(
    logits_ptr,
    bitmask_ptr,
    indices_ptr,
    logits_stride,
    vocab_size,
    num_words,
    HAS_INDICES: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Program (mask row, token block): write -inf over the block's disallowed tokens."""
    mask_row = tl.program_id(0).to(tl.int64)
    if HAS_INDICES:
        logits_row = tl.load(indices_ptr + mask_row).to(tl.int64)
    else:
        logits_row = mask_row
    tokens = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    in_vocab = tokens < vocab_size
    words = tl.load(bitmask_ptr + mask_row * num_words + tokens // 32, mask=in_vocab, other=-1)
    # NOTE: >> on int32 is arithmetic, but `& 1` keeps only the wanted bit either way.
    is_allowed = ((words >> (tokens % 32)) & 1) != 0
    tl.store(
        logits_ptr + logits_row * logits_stride + tokens,
        float("-inf"),
        mask=in_vocab & ~is_allowed,
    )


def triton_apply_token_bitmask(
    logits: Tensor, bitmask: Tensor, indices: Tensor | None = None
) -> None:
    """Set disallowed logits to -inf, in place; see the reference ``apply_token_bitmask``.

    ``logits`` ``[B, V]`` (last dim contiguous), ``bitmask`` int32 ``[N, ceil(V/32)]`` or
    wider, optional distinct ``indices`` ``[N]`` mapping bitmask rows to logits rows.
    """
    check_bitmask_args(logits, bitmask, indices)
    if logits.stride(-1) != 1:
        raise ValueError("logits must be contiguous in the vocabulary dimension")
    num_rows, vocab_size = bitmask.shape[0], logits.shape[-1]
    if num_rows == 0 or vocab_size == 0:
        return
    block = min(_BLOCK, triton.next_power_of_2(vocab_size))
    bitmask = bitmask.contiguous()
    _apply_bitmask_kernel[(num_rows, triton.cdiv(vocab_size, block))](
        logits,
        bitmask,
        indices.contiguous() if indices is not None else bitmask,
        logits.stride(0),
        vocab_size,
        bitmask.shape[1],
        HAS_INDICES=indices is not None,
        BLOCK=block,
    )
