"""Rank 0 of a tensor-parallel engine: it starts the workers, loads its own shard, runs the
engine (scheduler, sampling) and broadcasts each forward pass before running it itself.

    Engine (rank 0) ── spawn ──► worker 1 .. N-1 (tp_worker.run_worker)
       │  each rank loads its shard from the safetensors files; workers report ready
       │  process group (gloo | nccl) over rank 0's TCPStore
       │  rank 0 builds the KV pool, broadcasts its slot count; workers build theirs
       ▼  every step: header + compact batch (batch_wire) ──► all ranks run the forward;
          row-parallel all-reduces inside; logits all-gathered; rank 0 samples

Shutting down: rank 0 broadcasts stop; workers still there after a grace period are
terminated, then killed. Workers exit by themselves when rank 0's process dies.
"""

from __future__ import annotations

import functools
import logging
import math
import multiprocessing as mp
import queue
import threading
import time
from pathlib import Path

import numpy as np
import torch

from sglc.kernels import KernelOps
from sglc.runtime.config import EngineConfig
from sglc.runtime.core import EngineError
from sglc.runtime.distributed import batch_wire
from sglc.runtime.distributed.comm import Communicator, open_store
from sglc.runtime.distributed.sharding import TPShard
from sglc.runtime.distributed.tp_worker import WorkerSpec, run_worker
from sglc.runtime.model_runner import ModelRunner
from sglc.runtime.models.attention import ForwardBatch
from sglc.runtime.models.config import ModelConfig
from sglc.runtime.models.loader import LoadedModel, load_model_dir, read_hf_config
from sglc.runtime.models.lora import LoraBatch

log = logging.getLogger(__name__)

_READY_TIMEOUT_S = 600.0  # loading a shard
_STOP_GRACE_S = 10.0


def rank_device(device: torch.device, rank: int) -> torch.device:
    """Rank r's device: the r-th GPU after the engine's, or the CPU."""
    if device.type == "cuda":
        return torch.device("cuda", (device.index or 0) + rank)
    return device


class TensorParallel:
    """Rank 0's handle on its workers and their process group."""

    def __init__(self, model_path: Path, config: EngineConfig, device: torch.device,
                 kernel_backend: str) -> None:
        self.size = config.tp_size
        self.model_path = model_path
        self.device = device
        self.shard = TPShard(ModelConfig.from_hf(read_hf_config(model_path)), 0, self.size)
        self.comm: Communicator | None = None
        self._closed = False
        self._store = open_store(self.size)
        context = mp.get_context("spawn")
        self._ready = context.Queue()
        threads = max(1, torch.get_num_threads() // self.size)
        self.workers = []
        for rank in range(1, self.size):
            spec = WorkerSpec(str(model_path), config.dtype, str(rank_device(device, rank)),
                              kernel_backend, config.page_size, rank, self.size,
                              self._store.port, threads)
            proc = context.Process(target=run_worker, args=(spec, self._ready),
                                   name=f"sglc-tp-rank{rank}", daemon=True)
            proc.start()
            self.workers.append(proc)

    @property
    def worker_pids(self) -> list[int]:
        return [p.pid for p in self.workers]

    def load(self, dtype: str, ops: KernelOps) -> LoadedModel:
        """Rank 0's shard (loaded while the workers load theirs), in the process group."""
        loaded = load_model_dir(self.model_path, dtype=dtype, device=self.device, ops=ops,
                                shard=self.shard)
        self._wait_ready()
        self.comm = Communicator(self._store, 0, self.size, self.device)
        model = self.shard.wrap(loaded.model, self.comm)
        return LoadedModel(model, loaded.config, loaded.tokenizer, loaded.eos_token_ids,
                           loaded.path)

    def runner_type(self) -> functools.partial[ModelRunner]:
        return functools.partial(TPModelRunner, tp=self)

    def start(self, num_slots: int) -> None:
        """Hand the workers the KV pool's size; they then serve forward passes."""
        self.comm.broadcast(torch.tensor([num_slots], dtype=torch.int64, device=self.device))

    def check_alive(self) -> None:
        """EngineError naming a worker that has exited."""
        for rank, proc in enumerate(self.workers, start=1):
            if not proc.is_alive():
                raise EngineError(f"tensor-parallel worker rank {rank} (pid {proc.pid}) exited "
                                  f"with code {proc.exitcode}; restart the engine")

    def close(self) -> None:
        """Stop the workers: a stop broadcast, then terminate, then kill what is left."""
        if self._closed:
            return
        self._closed = True
        if self.comm is not None and all(p.is_alive() for p in self.workers):
            sender = threading.Thread(target=self._send_stop, daemon=True)
            sender.start()
            sender.join(_STOP_GRACE_S)
        deadline = time.monotonic() + _STOP_GRACE_S
        for proc in self.workers:
            proc.join(max(0.0, deadline - time.monotonic()))
        for proc in self.workers:
            if proc.is_alive():
                log.warning("tensor-parallel worker %s did not stop; terminating it", proc.pid)
                proc.terminate()
                proc.join(2.0)
            if proc.is_alive():
                proc.kill()
                proc.join(2.0)

    def _send_stop(self) -> None:
        try:
            batch_wire.send_stop(self.comm)
        except Exception:  # noqa: BLE001 - a worker already gone; close() cleans up
            log.debug("stop broadcast failed", exc_info=True)

    def _wait_ready(self) -> None:
        """Every worker's shard loaded; EngineError with the first failure otherwise."""
        waiting = set(range(1, self.size))
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while waiting:
            try:
                rank, error = self._ready.get(timeout=0.5)
            except queue.Empty:
                dead = [(r, p) for r, p in enumerate(self.workers, 1) if not p.is_alive()]
                if dead:
                    rank, proc = dead[0]
                    raise EngineError(f"tensor-parallel worker rank {rank} exited with code "
                                      f"{proc.exitcode} while loading its shard") from None
                if time.monotonic() > deadline:
                    raise EngineError(f"tensor-parallel workers {sorted(waiting)} did not load "
                                      f"their shards in {_READY_TIMEOUT_S:.0f}s") from None
                continue
            if error is not None:
                raise EngineError(f"tensor-parallel worker rank {rank} failed to load its "
                                  f"shard: {error}")
            waiting.discard(rank)


class TPModelRunner(ModelRunner):
    """Rank 0's model runner: each forward pass is broadcast to the workers first; the
    logits it gets are the whole vocabulary's (gathered)."""

    def __init__(self, *args, tp: TensorParallel, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tp = tp

    def run_model(self, fb: ForwardBatch, keep: torch.Tensor | None,
                  lora: LoraBatch | None) -> torch.Tensor:
        self.tp.check_alive()
        batch_wire.send_forward(self.tp.comm, fb, self.req_pool.req_to_token, keep)
        return super().run_model(fb, keep, lora)

    def _column_logits(self, hidden: torch.Tensor, columns: np.ndarray,
                       compact: bool = False) -> torch.Tensor:
        """The vocabulary is sharded: all the logits are gathered, then the columns kept."""
        logits = self.model.compute_logits(hidden)
        index = torch.from_numpy(columns).to(logits.device)
        if compact:
            return logits[:, index]
        out = torch.full_like(logits, -math.inf)
        out[:, index] = logits[:, index]
        return out
