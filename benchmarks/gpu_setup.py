"""Shared by the GPU kernel scripts: shapes, the run (device, clock, timing), comparisons
and attention inputs. Importing it first sets ``TRITON_INTERPRET=1`` under ``--cpu-smoke``
(before anything imports Triton, which picks the interpreter when a kernel is decorated)."""

from __future__ import annotations

import os
import sys
import time

_T0 = time.perf_counter()
CPU_SMOKE = "--cpu-smoke" in sys.argv[1:]
if CPU_SMOKE:
    # triton.jit picks the interpreter when a kernel is decorated, i.e. at import time.
    os.environ["TRITON_INTERPRET"] = "1"

import gc  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
import triton  # noqa: E402
from torch import Tensor  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the script runs from any directory)

from sglc.kernels.kv_quant import QuantizedKV, allocate  # noqa: E402
from sglc.kernels.kv_store import store_kv  # noqa: E402
from sglc.kernels.lora import NO_ADAPTER  # noqa: E402

DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
HALF = (torch.bfloat16, torch.float16)
# HBM peak in bytes/s by device name; SXM H100s report "NVIDIA H100 80GB HBM3".
PEAKS = (("H200", 4.8e12), ("H100 80GB HBM3", 3.35e12), ("H100 SXM", 3.35e12))
DECODE_TARGET_PEAK = 0.60
EXTEND_TARGET_RATIO = 0.8
# (atol, rtol) of |out - ref| <= atol + rtol * |ref|; 16-bit values as in tests/kernels.
ATTN_TOL = {torch.float32: (2e-4, 2e-3), torch.bfloat16: (2e-2, 2e-2), torch.float16: (2e-2, 2e-2)}
ELEMENTWISE_TOL = {torch.bfloat16: (2e-2, 2e-2), torch.float16: (1e-2, 1e-2)}
MOE_TOL = (8e-2, 3e-2)


# -- shapes ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sizes:
    """Every shape the script uses; FULL on a GPU, QUICK with --quick, SMOKE on CPU."""

    heads: tuple[int, int, int] = (32, 8, 128)  # q heads, kv heads, head dim
    extend_lens: tuple[tuple[int, int], ...] = (  # (cached prefix, new tokens) per request
        (0, 100), (37, 64), (300, 129), (5, 1), (1000, 77), (0, 513))  # fmt: skip
    decode_seq_lens: tuple[int, ...] = (1, 17, 300, 1024, 4000, 77, 2048, 513)
    window_cap: tuple[int, float] = (256, 5.0)  # the sliding-window + logit-cap variant
    kv_store: tuple[int, int] = (300, 4096)  # tokens written, pool slots
    rows: int = 512  # tokens for RMSNorm / RoPE / SiLU checks
    hidden: int = 4096
    intermediate: int = 14336
    vocab: int = 32001  # bitmask (odd on purpose)
    lora_segments: tuple[tuple[int, int], ...] = (  # (tokens, adapter) per segment
        (3, 2), (40, NO_ADAPTER), (0, 1), (100, 1), (1, 0), (112, 0))  # fmt: skip
    lora_ranks: tuple[int, ...] = (8, 16, 64)
    lora_dims: tuple[int, int] = (4096, 4096)  # hidden in, out
    moe: tuple[int, int, int, int, int] = (128, 2048, 1408, 8, 2)  # T, H, I, experts, top-k
    # bandwidth section
    decode_bench: tuple[int, int] = (64, 4096)  # batch, context
    norm_bench: tuple[int, int] = (8192, 4096)  # tokens, hidden
    rope_bench: int = 8192  # tokens
    silu_bench: tuple[int, int] = (4096, 14336)  # tokens, intermediate
    bitmask_bench: tuple[int, int] = (256, 128256)  # batch, vocab
    kv_bench: int = 8192  # tokens
    # extend vs SDPA: (label, batch, cached prefix, new tokens)
    extend_bench: tuple[tuple[str, int, int, int], ...] = (
        ("no prefix", 4, 0, 2048), ("cached prefix", 4, 1536, 512))  # fmt: skip
    # engine
    model: dict[str, int] = field(default_factory=lambda: dict(
        vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=16,
        num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=2048))  # fmt: skip
    engine_batches: tuple[int, ...] = (1, 16, 64)
    prompt_len: int = 128
    new_tokens: int = 64


FULL = Sizes()
QUICK = Sizes(
    decode_bench=(16, 1024), norm_bench=(2048, 4096), rope_bench=2048, silu_bench=(1024, 14336),
    bitmask_bench=(64, 128256), kv_bench=2048,
    extend_bench=(("no prefix", 2, 0, 1024), ("cached prefix", 2, 768, 256)),
    model=dict(FULL.model, num_hidden_layers=4), new_tokens=32,
)  # fmt: skip
SMOKE = Sizes(
    heads=(4, 2, 32), extend_lens=((0, 17), (5, 3), (20, 1)), decode_seq_lens=(1, 17, 40),
    window_cap=(7, 2.0), kv_store=(11, 40), rows=5, hidden=100, intermediate=100, vocab=1000,
    lora_segments=((3, 2), (2, NO_ADAPTER), (0, 1), (5, 0)),
    lora_dims=(40, 48), moe=(9, 48, 40, 6, 2),
    decode_bench=(2, 40), norm_bench=(4, 64), rope_bench=4, silu_bench=(4, 64),
    bitmask_bench=(2, 100), kv_bench=4,
    extend_bench=(("no prefix", 2, 0, 20), ("cached prefix", 2, 12, 8)),
    model=dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256),
    engine_batches=(1, 3), prompt_len=8, new_tokens=4,
)  # fmt: skip


# -- the run: device, clock, timing ---------------------------------------------------------
@dataclass
class Run:
    device: torch.device
    sizes: Sizes
    budget_s: float
    peak: float | None  # HBM bytes/s, None if unknown
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # benchmarks that raised

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def elapsed(self) -> float:
        return time.perf_counter() - _T0

    def allows(self, what: str, cost_s: float) -> bool:
        """Whether `what` (about `cost_s` seconds) still fits the budget; notes a skip."""
        if self.elapsed() + cost_s <= self.budget_s:
            return True
        note = (f"{what}: skipped at {self.elapsed():.0f}s (needs ~{cost_s:.0f}s, "
                f"budget {self.budget_s:.0f}s)")
        print(f"  ! {note}", flush=True)
        self.skipped.append(note)
        return False

    def guarded(self, what: str, fn: Callable[[], list[dict]]) -> list[dict]:
        """``fn()``, or [] with the error noted: one failure must not hide the rest."""
        try:
            return fn()
        except Exception as exc:
            note = f"{what}: {type(exc).__name__}: {exc}"
            print(f"  ! ERROR {note}", flush=True)
            self.errors.append(note)
            _free(self)
            return []

    def bench_ms(self, fn: Callable[[], Any]) -> float:
        """Median milliseconds per call: do_bench on CUDA, a few perf_counter runs on CPU."""
        if self.cuda:
            return float(triton.testing.do_bench(fn, warmup=10, rep=40, return_mode="median"))
        fn()
        times = []
        for _ in range(3):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return common.median(times) * 1e3

    def generator(self, seed: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(seed)

    def randn(self, *shape: int, dtype: torch.dtype, seed: int, scale: float = 1.0) -> Tensor:
        out = torch.randn(shape, generator=self.generator(seed), device=self.device, dtype=dtype)
        return out.mul_(scale) if scale != 1.0 else out


def hbm_peak(name: str) -> float | None:
    return next((peak for key, peak in PEAKS if key in name), None)


def compare(out: Tensor, ref: Tensor, atol: float, rtol: float) -> tuple[float, bool]:
    """(max abs error, allclose) over all elements; equal infinities count as equal. A
    different shape or dtype fails."""
    if out.shape != ref.shape or out.dtype != ref.dtype:
        return float("inf"), False
    out, ref = out.float(), ref.float()
    diff = torch.where(out == ref, 0.0, (out - ref).abs()).nan_to_num(nan=float("inf"))
    err = diff.max().item() if diff.numel() else 0.0
    return err, bool(torch.allclose(out, ref, atol=atol, rtol=rtol))


def check_row(kernel: str, dtype: torch.dtype, shape: str, out: Tensor, ref: Tensor,
              tol: tuple[float, float]) -> dict[str, Any]:
    err, ok = compare(out, ref, *tol)
    tol_text = "exact" if tol == (0.0, 0.0) else f"atol {tol[0]:g}, rtol {tol[1]:g}"
    return {"kernel": kernel, "dtype": DTYPE_NAMES.get(dtype, str(dtype)), "shape": shape,
            "max_abs_err": err, "tolerance": tol_text, "pass": ok}


# -- attention inputs -----------------------------------------------------------------------
@dataclass
class Pool:
    """A KV pool holding each request's context in its own req_to_token row."""

    k_buffer: Tensor
    v_buffer: Tensor
    req_to_token: Tensor
    rows: list[int]
    prefixes: list[int]
    extends: list[int]

    @property
    def seq_lens(self) -> list[int]:
        return [p + e for p, e in zip(self.prefixes, self.extends, strict=True)]


def make_pool(run: Run, lens, kv_heads: int, head_dim: int, dtype: torch.dtype, seed: int,
              shuffle: bool) -> Pool:
    """(prefix, extend) per request; request b lives in row B-1-b; slot 0 is never used.
    `shuffle` scatters each request's tokens over the pool, else they are contiguous."""
    totals = [p + e for p, e in lens]
    num_slots = sum(totals) + 1
    if shuffle:
        slots = torch.randperm(num_slots - 1, generator=run.generator(seed), device=run.device)
        slots += 1
    else:
        slots = torch.arange(1, num_slots, device=run.device)
    req_to_token = torch.zeros(len(lens), max(totals), dtype=torch.int64, device=run.device)
    rows = list(range(len(lens) - 1, -1, -1))
    offset = 0
    for row, total in zip(rows, totals, strict=True):
        req_to_token[row, :total] = slots[offset : offset + total]
        offset += total
    shape = (num_slots, kv_heads, head_dim)
    return Pool(run.randn(*shape, dtype=dtype, seed=seed + 1),
                run.randn(*shape, dtype=dtype, seed=seed + 2), req_to_token, rows,
                [p for p, _ in lens], [e for _, e in lens])  # fmt: skip


def quantized_kv(run: Run, pool: Pool, bits: int) -> tuple[QuantizedKV, QuantizedKV]:
    """`pool`'s K and V written into `bits`-bit quantized pools by the reference store."""
    num_slots, hkv, d = pool.k_buffer.shape
    k_buf, v_buf = (allocate(num_slots, hkv, d, bits, run.device) for _ in range(2))
    store_kv(k_buf, v_buf, torch.arange(num_slots, device=run.device), pool.k_buffer,
             pool.v_buffer)
    return k_buf, v_buf


# -- helpers --------------------------------------------------------------------------------
def _free(run: Run) -> None:
    """Drop what the last section left on the device."""
    gc.collect()
    if run.cuda:
        torch.cuda.empty_cache()


def _err_text(err: float | int | None) -> str:
    if err is None or isinstance(err, int):
        return "-" if err is None else str(err)
    return "0" if err == 0 else f"{err:.1e}"
