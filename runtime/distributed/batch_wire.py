"""The compact form of a forward pass that rank 0 broadcasts to the other ranks.

Two broadcasts per step: a fixed header, then one int64 payload. Workers hold no
scheduler and no `req_to_token` table: the payload carries the batch's rows of rank 0's
table (columns 0 .. seq_len-1 of each request), which a worker puts in a table of its own
whose row b is the batch's request b. Its KV pool's slots are rank 0's slots.

    header   [command, mode, T tokens, B requests, N logits rows, R table entries, keep?, 0]
    payload  input_ids[T] positions[T] out_cache_loc[T] prefix_lens[B] extend_lens[B]
             logits_indices[N] table[R]
"""

from __future__ import annotations

import torch

from sglc.runtime.core import ForwardMode
from sglc.runtime.distributed.comm import Communicator
from sglc.runtime.models.attention import ForwardBatch

_FORWARD, _STOP = 1, 0
_MODES = (ForwardMode.EXTEND, ForwardMode.DECODE)
_HEADER_LEN = 8


class WireStep:
    """What a worker runs: a ForwardBatch over its own batch-local `req_to_token`."""

    def __init__(self, batch: ForwardBatch, req_to_token: torch.Tensor,
                 keep: torch.Tensor | None) -> None:
        self.batch, self.req_to_token, self.keep = batch, req_to_token, keep


def send_forward(comm: Communicator, fb: ForwardBatch, req_to_token: torch.Tensor,
                 keep: torch.Tensor | None) -> None:
    """Rank 0: broadcast the forward pass `fb` (over its `req_to_token` table)."""
    rows = [req_to_token[row, :n] for row, n in zip(fb.rows_list, fb.seq_lens_list, strict=True)]
    table = torch.cat(rows) if rows else req_to_token.new_zeros(0)
    parts = [fb.input_ids, fb.positions, fb.out_cache_loc, fb.prefix_lens, fb.extend_lens,
             fb.logits_indices, table]
    header = [_FORWARD, _MODES.index(fb.mode), fb.input_ids.numel(), fb.batch_size,
              fb.logits_indices.numel(), table.numel(), keep is not None, 0]
    comm.broadcast(torch.tensor(header, dtype=torch.int64, device=comm.device))
    comm.broadcast(torch.cat([p.to(comm.device, torch.int64) for p in parts]))


def send_stop(comm: Communicator) -> None:
    """Rank 0: tell the workers to exit their loop."""
    comm.broadcast(torch.zeros(_HEADER_LEN, dtype=torch.int64, device=comm.device))


def receive(comm: Communicator) -> WireStep | None:
    """A worker: the next forward pass, or None when rank 0 said stop."""
    header = comm.broadcast(torch.empty(_HEADER_LEN, dtype=torch.int64, device=comm.device))
    command, mode, t, b, n, r, has_keep, _ = header.tolist()
    if command == _STOP:
        return None
    payload = comm.broadcast(torch.empty(3 * t + 2 * b + n + r, dtype=torch.int64,
                                         device=comm.device))
    input_ids, positions, out_loc, prefix_lens, extend_lens, logits_idx, table = payload.split(
        [t, t, t, b, b, n, r])
    prefix_list, extend_list = prefix_lens.tolist(), extend_lens.tolist()
    seq_list = [p + e for p, e in zip(prefix_list, extend_list, strict=True)]
    req_to_token = torch.zeros(b, max(seq_list, default=1), dtype=torch.int64,
                               device=comm.device)
    for row, piece in enumerate(table.split(seq_list)):
        req_to_token[row, : piece.numel()] = piece
    fb = ForwardBatch(
        mode=_MODES[mode], input_ids=input_ids, positions=positions, out_cache_loc=out_loc,
        req_pool_indices=torch.arange(b, device=comm.device), prefix_lens=prefix_lens,
        extend_lens=extend_lens, seq_lens=prefix_lens + extend_lens, logits_indices=logits_idx,
        rows_list=list(range(b)), prefix_lens_list=prefix_list, extend_lens_list=extend_list,
    )
    return WireStep(fb, req_to_token, logits_idx if has_keep else None)
