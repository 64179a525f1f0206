"""A tensor-parallel worker process (ranks 1..N-1): load this rank's shard, then run every
forward pass rank 0 broadcasts until it says stop. Workers sample nothing and hold no
scheduler: their KV pool mirrors rank 0's slots, for their own KV heads."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from multiprocessing.queues import Queue
from pathlib import Path

import torch

from sglc.kernels import get_ops
from sglc.runtime.distributed import batch_wire
from sglc.runtime.distributed.comm import Communicator, join_store
from sglc.runtime.distributed.lifecycle import exit_with_parent
from sglc.runtime.distributed.sharding import TPShard
from sglc.runtime.mem import KVPool
from sglc.runtime.models.attention import PagedAttention
from sglc.runtime.models.config import ModelConfig
from sglc.runtime.models.loader import load_model_dir, read_hf_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSpec:
    """What rank `rank` needs to start (picklable: it crosses the process spawn)."""

    model_path: str
    dtype: str
    device: str  # this rank's device
    kernel_backend: str  # resolved by rank 0
    page_size: int
    rank: int
    size: int
    port: int  # rank 0's rendezvous store
    num_threads: int  # CPU threads for this process's torch ops


def run_worker(spec: WorkerSpec, ready: Queue) -> None:
    """The worker's process target. Reports (rank, None) once its shard is loaded, or
    (rank, error) if that failed; then serves rank 0 until told to stop."""
    exit_with_parent()
    torch.set_num_threads(spec.num_threads)
    device = torch.device(spec.device)
    try:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        ops = get_ops(spec.kernel_backend)
        shard = TPShard(ModelConfig.from_hf(read_hf_config(Path(spec.model_path))), spec.rank,
                        spec.size)
        loaded = load_model_dir(spec.model_path, dtype=spec.dtype, device=device, ops=ops,
                                load_tokenizer=False, shard=shard)
    except Exception as exc:  # noqa: BLE001 - reported to rank 0, which raises it
        ready.put((spec.rank, f"{type(exc).__name__}: {exc}"))
        return
    ready.put((spec.rank, None))
    try:
        comm = Communicator(join_store(spec.port, spec.size), spec.rank, spec.size, device)
        model = shard.wrap(loaded.model, comm)
        num_slots = int(comm.broadcast(torch.zeros(1, dtype=torch.int64, device=device)).item())
        cfg = model.cfg
        pool = KVPool(num_layers=cfg.num_layers, num_slots=num_slots,
                      num_kv_heads=cfg.num_kv_heads, head_dim=cfg.head_dim,
                      dtype=next(model.parameters()).dtype, device=device,
                      page_size=spec.page_size, kv_sources=cfg.kv_sources)
        serve(model, ops, pool, comm)
    except Exception:  # rank 0 sees this rank exit (or its sockets close) and fails its step
        log.exception("tensor-parallel rank %d failed", spec.rank)
        raise SystemExit(1) from None
    # NOTE: nothing to save: skip the interpreter's teardown (seconds with torch loaded, and
    # the process group's destructor may wait on peers that are gone already)
    logging.shutdown()
    os._exit(0)


@torch.inference_mode()
def serve(model: torch.nn.Module, ops, pool: KVPool, comm: Communicator) -> None:
    """Run rank 0's forward passes (and the logits all-gather) until it says stop."""
    while (step := batch_wire.receive(comm)) is not None:
        fb = step.batch
        attn = PagedAttention(ops, pool.k_buffers, pool.v_buffers, step.req_to_token, fb)
        hidden = model(fb.input_ids, fb.positions, attn, step.keep, None)
        model.compute_logits(hidden)
