"""Communicator: the collectives tensor parallelism needs, over one torch.distributed
process group of its own (gloo on CPU, nccl on CUDA).

The group is built from a TCPStore directly, not through `init_process_group`: no
process-wide default group, so an engine's group lives and dies with the engine, and one
process may hold several engines.
"""

from __future__ import annotations

import datetime

import torch
import torch.distributed as dist

from sglc.runtime.core import EngineError

# how long a collective may wait for the other ranks (a dead peer usually fails it sooner:
# its sockets close)
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=10)
_STORE_TIMEOUT = datetime.timedelta(seconds=120)


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def open_store(world_size: int) -> dist.TCPStore:
    """Rank 0's rendezvous store on a free local port (`store.port`)."""
    return dist.TCPStore("127.0.0.1", 0, world_size, is_master=True, wait_for_workers=False,
                         timeout=_STORE_TIMEOUT)


def join_store(port: int, world_size: int) -> dist.TCPStore:
    return dist.TCPStore("127.0.0.1", port, world_size, is_master=False,
                         timeout=_STORE_TIMEOUT)


class Communicator:
    """Rank `rank` of `size` in a process group; tensors live on `device` (CPU for gloo,
    that rank's GPU for nccl). Every method is a collective: all ranks call it, in the same
    order, with tensors of the same shape."""

    def __init__(self, store: dist.Store, rank: int, size: int, device: torch.device) -> None:
        self.rank, self.size, self.device = rank, size, device
        if backend_for(device) == "nccl":
            if not hasattr(dist, "ProcessGroupNCCL"):
                raise EngineError("tensor parallelism on CUDA needs a torch built with NCCL")
            options = dist.ProcessGroupNCCL.Options()
            options._timeout = COLLECTIVE_TIMEOUT
            self.group = dist.ProcessGroupNCCL(store, rank, size, options)
        else:
            self.group = dist.ProcessGroupGloo(store, rank, size, COLLECTIVE_TIMEOUT)

    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum over ranks, in place; returns `tensor`."""
        self.group.allreduce([tensor]).wait()
        return tensor

    def all_gather_last(self, tensor: torch.Tensor) -> torch.Tensor:
        """Every rank's `tensor`, concatenated along the last dimension in rank order."""
        tensor = tensor.contiguous()
        parts = [torch.empty_like(tensor) for _ in range(self.size)]
        self.group.allgather([parts], [tensor]).wait()
        return torch.cat(parts, dim=-1)

    def broadcast(self, tensor: torch.Tensor) -> torch.Tensor:
        """Rank 0's `tensor` into every rank's, in place; returns `tensor`."""
        options = dist.BroadcastOptions()
        options.rootRank = 0
        self.group.broadcast([tensor], options).wait()
        return tensor
