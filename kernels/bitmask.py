"""Token bitmask reference: pack/unpack allowed-token masks and apply them to logits.

A grammar constraint says which tokens may come next as one bit per token, 32 tokens per
int32 word, little-endian within the word (outlines-core ``Guide.write_mask_into`` and
xgrammar write this layout)::

    bitmask[b]:   word 0                      word 1                  ...  word W-1
    bit:          0  1  2 ... 31              0  1 ... 31
    token:        0  1  2 ... 31              32 33 ... 63                 ... V-1 (pad bits)

Token t of row b is allowed iff ``(bitmask[b, t // 32] >> (t % 32)) & 1``. W = ceil(V / 32);
bits past the vocabulary are ignored.
"""

from __future__ import annotations

import torch
from torch import Tensor

BITS_PER_WORD = 32


def num_mask_words(vocab_size: int) -> int:
    """Words per bitmask row for a vocabulary of ``vocab_size`` tokens."""
    return -(-vocab_size // BITS_PER_WORD)


def pack_allowed(allowed: Tensor) -> Tensor:
    """Bool ``[B, V]`` -> int32 bitmask ``[B, ceil(V/32)]`` (padding bits are 0)."""
    batch, vocab_size = allowed.shape
    padded = torch.zeros(
        batch, num_mask_words(vocab_size) * BITS_PER_WORD, dtype=torch.int64, device=allowed.device
    )
    padded[:, :vocab_size] = allowed.to(torch.int64)
    bit_values = torch.ones(BITS_PER_WORD, dtype=torch.int64, device=allowed.device)
    bit_values = bit_values << torch.arange(BITS_PER_WORD, device=allowed.device)
    words = (padded.view(batch, -1, BITS_PER_WORD) * bit_values).sum(-1)
    # Reinterpret the unsigned 32-bit words as int32 (two's complement).
    return torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)


def unpack_bitmask(bitmask: Tensor, vocab_size: int) -> Tensor:
    """Int32 bitmask ``[B, W]`` -> bool ``[B, vocab_size]`` (``vocab_size <= 32 * W``)."""
    _check_width(bitmask, vocab_size)
    shifts = torch.arange(BITS_PER_WORD, dtype=torch.int32, device=bitmask.device)
    bits = (bitmask[:, :, None] >> shifts) & 1
    return bits.flatten(1)[:, :vocab_size].bool()


def apply_token_bitmask(logits: Tensor, bitmask: Tensor, indices: Tensor | None = None) -> None:
    """Set disallowed logits to -inf, in place.

    ``logits`` is ``[B, V]`` float; ``bitmask`` is int32 ``[N, W]`` with ``V <= 32 * W``.
    Without ``indices`` N == B and bitmask row b masks logits row b; with ``indices`` (int
    ``[N]``, distinct) bitmask row i masks logits row ``indices[i]`` and other rows are left
    alone (rows of unconstrained requests).
    """
    check_bitmask_args(logits, bitmask, indices)
    allowed = unpack_bitmask(bitmask, logits.shape[-1])
    if indices is None:
        logits.masked_fill_(~allowed, float("-inf"))
        return
    indices = indices.long()
    rows = logits.index_select(0, indices).masked_fill_(~allowed, float("-inf"))
    logits.index_copy_(0, indices, rows)


def check_bitmask_args(logits: Tensor, bitmask: Tensor, indices: Tensor | None) -> None:
    """ValueError unless the arguments fit the ``apply_token_bitmask`` contract."""
    _check_width(bitmask, logits.shape[-1])
    if logits.dim() != 2:
        raise ValueError(f"logits must be [B, V], got {tuple(logits.shape)}")
    num_rows = bitmask.shape[0]
    if indices is None and num_rows != logits.shape[0]:
        raise ValueError(f"bitmask has {num_rows} rows, logits {logits.shape[0]}")
    if indices is not None and indices.shape != (num_rows,):
        raise ValueError(f"indices must be [{num_rows}], got {tuple(indices.shape)}")


def _check_width(bitmask: Tensor, vocab_size: int) -> None:
    if bitmask.dtype != torch.int32 or bitmask.dim() != 2:
        raise ValueError(
            f"bitmask must be int32 [B, W], got {bitmask.dtype} {tuple(bitmask.shape)}"
        )
    if vocab_size > bitmask.shape[1] * BITS_PER_WORD:
        raise ValueError(
            f"bitmask of {bitmask.shape[1]} words covers {bitmask.shape[1] * BITS_PER_WORD} "
            f"tokens, fewer than the vocabulary's {vocab_size}"
        )
