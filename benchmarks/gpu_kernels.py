"""Every Triton kernel on CUDA: checked against its PyTorch reference, then measured.

    python benchmarks/gpu_kernels.py                   # on an H100/H200: under 5 minutes
    python benchmarks/gpu_kernels.py --quick           # smaller shapes
    python benchmarks/gpu_kernels.py --skip-engine     # kernels only
    TRITON_INTERPRET=1 python benchmarks/gpu_kernels.py --cpu-smoke   # logic check, no GPU

1. Correctness: each Triton kernel (extend and decode attention, KV store, RMSNorm with and
   without the fused residual, RoPE, SiLU-and-mul, bitmask apply, sampling, LoRA shrink and
   expand, fused MoE) and its reference run on the same CUDA inputs (bf16 and fp16; fp32 too
   for attention); the max abs error and PASS/FAIL against the stated tolerance
   (``|out - ref| <= atol + rtol * |ref|`` everywhere; exact where the op is a copy; for
   sampling, the number of rows whose drawn index differs).
2. Bandwidth: GB/s and % of the card's HBM peak (H100 SXM 3.35 TB/s, H200 4.8 TB/s; other
   cards GB/s only, or pass ``--peak-tbs``) of decode attention (batch 64 x 4k context, 32 q /
   8 kv heads, head dim 128, bf16; bytes = K + V read + q read + out written), RMSNorm,
   RoPE, SiLU-and-mul, bitmask apply and KV store, next to the torch reference's time.
   Target: decode attention >= 60% of peak.
3. Extend attention TFLOP/s next to ``F.scaled_dot_product_attention`` (causal, kv heads
   repeated for it, same shapes): batch 4 x 2k new tokens, and 4 x 512 over a cached
   1.5k prefix. Target: >= 0.8x SDPA.
4. Engine decode throughput: a random-weight ~1B Llama (hidden 2048, 16 layers, 32 / 8
   heads, intermediate 5632, vocab 32000), bf16, batch 1 / 16 / 64, 128-token prompts and
   64 new tokens, ``attention_backend="triton"`` vs ``"torch"``. Decode tok/s excludes the
   prefill (timed separately with one new token on fresh prompts).

Kernel timings are ``triton.testing.do_bench`` medians (CUDA events, L2 flushed between
runs). A time guard skips what would end past ``--budget`` seconds (default 270) and says so.
``--cpu-smoke`` runs the same code on tiny shapes on CPU under Triton's interpreter (it sets
``TRITON_INTERPRET=1`` before anything imports Triton) and times with ``time.perf_counter``:
its numbers mean nothing, it only exercises the logic. Prints one table per section and
writes benchmarks/out/gpu_kernels.json (gpu_kernels_cpu_smoke.json with --cpu-smoke).
Exit status 1 if a correctness check fails or a benchmark raises (the rest still runs).
"""

from __future__ import annotations

import os
import sys
import time

_T0 = time.perf_counter()
CPU_SMOKE = "--cpu-smoke" in sys.argv[1:]
if CPU_SMOKE:
    # triton.jit picks the interpreter when a kernel is decorated, i.e. at import time.
    os.environ["TRITON_INTERPRET"] = "1"

import argparse  # noqa: E402
import gc  # noqa: E402
import math  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import triton  # noqa: E402
from torch import Tensor  # noqa: E402
from torch.nn.attention.bias import causal_lower_right  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the script runs from any directory)
import gpu_engine  # noqa: E402

import sglc  # noqa: E402
from sglc.kernels import AttentionShape  # noqa: E402
from sglc.kernels.activation import silu_and_mul  # noqa: E402
from sglc.kernels.bitmask import apply_token_bitmask, pack_allowed  # noqa: E402
from sglc.kernels.decode_attention import decode_attention, plan_decode  # noqa: E402
from sglc.kernels.extend_attention import extend_attention  # noqa: E402
from sglc.kernels.kv_store import store_kv  # noqa: E402
from sglc.kernels.lora import NO_ADAPTER, lora_expand, lora_shrink  # noqa: E402
from sglc.kernels.moe import fused_moe  # noqa: E402
from sglc.kernels.rmsnorm import rms_norm  # noqa: E402
from sglc.kernels.rope import apply_rope, build_rope_cache  # noqa: E402
from sglc.kernels.sampling import pick_sorted_index, sample_tokens, sort_probs  # noqa: E402
from sglc.kernels.triton_activation import triton_silu_and_mul  # noqa: E402
from sglc.kernels.triton_bitmask import triton_apply_token_bitmask  # noqa: E402
from sglc.kernels.triton_decode_attention import (  # noqa: E402
    triton_decode_attention,
    triton_plan_decode,
)
from sglc.kernels.triton_extend_attention import (  # noqa: E402
    triton_extend_attention,
    triton_plan_extend,
)
from sglc.kernels.triton_kv_store import triton_store_kv  # noqa: E402
from sglc.kernels.triton_lora import triton_lora_expand, triton_lora_shrink  # noqa: E402
from sglc.kernels.triton_moe import triton_fused_moe  # noqa: E402
from sglc.kernels.triton_rmsnorm import triton_rms_norm  # noqa: E402
from sglc.kernels.triton_rope import triton_apply_rope  # noqa: E402
from sglc.kernels.triton_sampling import (  # noqa: E402
    triton_pick_sorted_index,
    triton_sample_tokens,
)

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
    sample_batch: int = 64
    sample_vocab: int = 32000
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
    sample_batch=9, sample_vocab=100, lora_segments=((3, 2), (2, NO_ADAPTER), (0, 1), (5, 0)),
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


# -- 1. correctness -------------------------------------------------------------------------
def check_extend(run: Run, dtype: torch.dtype, variant: bool = False) -> list[dict]:
    hq, hkv, d = run.sizes.heads
    pool = make_pool(run, run.sizes.extend_lens, hkv, d, dtype, seed=10, shuffle=True)
    q = run.randn(sum(pool.extends), hq, d, dtype=dtype, seed=13, scale=2.0 if variant else 1.0)
    options: dict[str, Any] = {"sm_scale": 1 / math.sqrt(d)}
    name = "extend attention"
    if variant:
        window, cap = run.sizes.window_cap
        options.update(sliding_window=window, logit_cap=cap)
        name += f" window {window} cap {cap:g}"
    args = (q, pool.k_buffer, pool.v_buffer, pool.req_to_token, pool.rows, pool.prefixes,
            pool.extends)  # fmt: skip
    out = triton_extend_attention(*args, **options)
    ref = extend_attention(*args, **options)
    shape = f"{len(pool.rows)} reqs, {sum(pool.extends)} new / {sum(pool.seq_lens)} keys, {hq}/{hkv}x{d}"
    return [check_row(name, dtype, shape, out, ref, ATTN_TOL[dtype])]


def check_decode(run: Run, dtype: torch.dtype, variant: bool = False) -> list[dict]:
    hq, hkv, d = run.sizes.heads
    lens = [(n - 1, 1) for n in run.sizes.decode_seq_lens]
    pool = make_pool(run, lens, hkv, d, dtype, seed=20, shuffle=True)
    q = run.randn(len(lens), hq, d, dtype=dtype, seed=23, scale=2.0 if variant else 1.0)
    options: dict[str, Any] = {"sm_scale": 1 / math.sqrt(d)}
    name = "decode attention"
    if variant:
        window, cap = run.sizes.window_cap
        options.update(sliding_window=window, logit_cap=cap)
        name += f" window {window} cap {cap:g}"
    args = (q, pool.k_buffer, pool.v_buffer, pool.req_to_token, pool.rows, pool.seq_lens)
    out = triton_decode_attention(*args, **options)
    ref = decode_attention(*args, **options)
    shape = f"seq lens {','.join(map(str, pool.seq_lens))}, {hq}/{hkv}x{d}"
    return [check_row(name, dtype, shape, out, ref, ATTN_TOL[dtype])]


def check_kv_store(run: Run, dtype: torch.dtype) -> list[dict]:
    _, hkv, d = run.sizes.heads
    num_tokens, num_slots = run.sizes.kv_store
    loc = torch.randperm(num_slots, generator=run.generator(30), device=run.device)[:num_tokens]
    rows = []
    for src_dtype in (dtype, torch.float32):
        k = run.randn(num_tokens, hkv, d, dtype=src_dtype, seed=31)
        v = run.randn(num_tokens, hkv, d, dtype=src_dtype, seed=32)
        pools = [torch.full((num_slots, hkv, d), -7.0, dtype=dtype, device=run.device)
                 for _ in range(4)]  # fmt: skip
        triton_store_kv(pools[0], pools[1], loc, k, v)
        store_kv(pools[2], pools[3], loc, k, v)
        got, want = torch.stack(pools[:2]), torch.stack(pools[2:])
        name = "kv store" if src_dtype == dtype else "kv store (cast from fp32)"
        shape = f"{num_tokens} tokens -> {num_slots} slots, {hkv}x{d}"
        rows.append(check_row(name, dtype, shape, got, want, (0.0, 0.0)))
    return rows


def check_rms_norm(run: Run, dtype: torch.dtype) -> list[dict]:
    n, h = run.sizes.rows, run.sizes.hidden
    x = run.randn(n, h, dtype=dtype, seed=40, scale=2.0)
    residual = run.randn(n, h, dtype=dtype, seed=41, scale=2.0)
    weight = 1 + 0.1 * run.randn(h, dtype=dtype, seed=42)
    tol, shape = ELEMENTWISE_TOL[dtype], f"{n}x{h}"
    out, summed = triton_rms_norm(x, weight, 1e-6, residual=residual)
    ref_out, ref_summed = rms_norm(x, weight, 1e-6, residual=residual)
    return [
        check_row("rmsnorm", dtype, shape, triton_rms_norm(x, weight, 1e-6),
                  rms_norm(x, weight, 1e-6), tol),
        check_row("rmsnorm + residual", dtype, shape, torch.cat([out, summed]),
                  torch.cat([ref_out, ref_summed]), tol),
    ]  # fmt: skip


def check_rope(run: Run, dtype: torch.dtype) -> list[dict]:
    hq, hkv, d = run.sizes.heads
    n, max_pos = run.sizes.rows, 8192
    q = run.randn(n, hq, d, dtype=dtype, seed=50, scale=2.0)
    k = run.randn(n, hkv, d, dtype=dtype, seed=51, scale=2.0)
    positions = torch.randint(0, max_pos, (n,), generator=run.generator(52), device=run.device)
    cache = build_rope_cache(d, max_pos, 500000.0, device=run.device)
    rows = []
    for is_neox in (True, False):
        got = triton_apply_rope(q, k, positions, cache, is_neox=is_neox)
        want = apply_rope(q, k, positions, cache, is_neox=is_neox)
        name = "rope " + ("neox" if is_neox else "gpt-j")
        rows.append(check_row(name, dtype, f"{n} tokens, {hq}/{hkv}x{d}",
                              torch.cat([t.flatten() for t in got]),
                              torch.cat([t.flatten() for t in want]), ELEMENTWISE_TOL[dtype]))
    return rows


def check_silu(run: Run, dtype: torch.dtype) -> list[dict]:
    n, i = run.sizes.rows, run.sizes.intermediate
    x = run.randn(n, 2 * i, dtype=dtype, seed=60, scale=2.0)
    return [check_row("silu and mul", dtype, f"{n}x{2 * i}", triton_silu_and_mul(x),
                      silu_and_mul(x), ELEMENTWISE_TOL[dtype])]  # fmt: skip


def check_bitmask(run: Run, dtype: torch.dtype) -> list[dict]:
    batch, vocab = run.sizes.rows, run.sizes.vocab
    allowed = torch.rand(batch, vocab, generator=run.generator(70), device=run.device) < 0.3
    bitmask = pack_allowed(allowed)
    logits = run.randn(batch, vocab, dtype=dtype, seed=71)
    got, want = logits.clone(), logits.clone()
    triton_apply_token_bitmask(got, bitmask)
    apply_token_bitmask(want, bitmask)
    rows = [check_row("bitmask apply", dtype, f"{batch}x{vocab}", got, want, (0.0, 0.0))]
    indices = torch.arange(0, batch, 2, device=run.device)
    got, want = logits.clone(), logits.clone()
    triton_apply_token_bitmask(got, bitmask[: len(indices)], indices)
    apply_token_bitmask(want, bitmask[: len(indices)], indices)
    rows.append(check_row("bitmask apply (row indices)", dtype, f"{len(indices)} of {batch} rows",
                          got, want, (0.0, 0.0)))
    return rows


SAMPLE_PARAMS = [  # (temperature, top_k, top_p, min_p) per row, cycled over the batch
    (0.0, 0, 1.0, 0.0), (1.0, -1, 1.0, 0.0), (0.7, 5, 1.0, 0.0), (1.3, 0, 0.8, 0.0),
    (1.0, 0, 1.0, 0.1), (0.9, 40, 0.9, 0.02), (1.0, 2**31 - 1, 0.5, 0.0), (2.0, 1, 1.0, 0.0),
    (0.5, 3, 0.3, 0.3),
]  # fmt: skip


def check_sampling(run: Run, dtype: torch.dtype) -> list[dict]:
    """The drawn sorted index and the token: rows that differ (float summation order may
    move a draw at an exact boundary, so a few are tolerated)."""
    batch, vocab = run.sizes.sample_batch, run.sizes.sample_vocab
    params = [SAMPLE_PARAMS[b % len(SAMPLE_PARAMS)] for b in range(batch)]
    temps, top_ks, top_ps, min_ps = (
        torch.tensor(col, device=run.device) for col in zip(*params, strict=True)
    )
    logits = run.randn(batch, vocab, dtype=dtype, seed=80, scale=3.0)
    uniforms = torch.rand(batch, generator=run.generator(81), device=run.device)
    sorted_probs, _ = sort_probs(logits, temps)
    got = triton_pick_sorted_index(sorted_probs, top_ks, top_ps, min_ps, uniforms)
    want = pick_sorted_index(sorted_probs, top_ks, top_ps, min_ps, uniforms)
    tokens_got = triton_sample_tokens(logits, temps, top_ks, top_ps, min_ps, uniforms)
    tokens_want = sample_tokens(logits, temps, top_ks, top_ps, min_ps, uniforms)
    allowed = max(1, batch // 50)
    rows = []
    for name, a, b in (("sampling: sorted index", got, want),
                       ("sampling: token", tokens_got, tokens_want)):  # fmt: skip
        differ = int((a != b).sum().item())
        rows.append({"kernel": name, "dtype": DTYPE_NAMES[dtype], "shape": f"{batch}x{vocab}",
                     "max_abs_err": differ, "tolerance": f"<= {allowed} rows differ",
                     "pass": differ <= allowed})  # fmt: skip
    return rows


def check_lora(run: Run, dtype: torch.dtype) -> list[dict]:
    lengths, adapters = zip(*run.sizes.lora_segments, strict=True)
    ranks, (hidden, out_size) = run.sizes.lora_ranks, run.sizes.lora_dims
    num_tokens, max_rank = sum(lengths), max(ranks)
    x = run.randn(num_tokens, hidden, dtype=dtype, seed=90)
    a = run.randn(len(ranks), max_rank, hidden, dtype=dtype, seed=91, scale=hidden**-0.5)
    b = run.randn(len(ranks), out_size, max_rank, dtype=dtype, seed=92, scale=max_rank**-0.5)
    for adapter, rank in enumerate(ranks):  # padding past each rank must never be read
        a[adapter, rank:] = 1e4
        b[adapter, :, rank:] = 1e4
    base = run.randn(num_tokens, out_size, dtype=dtype, seed=93)
    seg_indptr = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], device=run.device)
    seg_adapter = torch.tensor(adapters, dtype=torch.int32, device=run.device)
    rank_t = torch.tensor(ranks, dtype=torch.int32, device=run.device)
    scalings = torch.tensor([2.0, 0.5, 0.25][: len(ranks)], device=run.device)
    segments = (seg_indptr, seg_adapter, rank_t)
    y_ref = lora_shrink(x, a, *segments)
    shape = f"{num_tokens} tokens, {len(lengths)} segments, ranks {'/'.join(map(str, ranks))}"
    return [
        check_row("lora shrink (fp32 out)", dtype, f"{shape}, H {hidden}",
                  triton_lora_shrink(x, a, *segments), y_ref, (1e-3, 1e-3)),
        check_row("lora expand", dtype, f"{shape}, out {out_size}",
                  triton_lora_expand(y_ref, b, *segments, scalings, base),
                  lora_expand(y_ref, b, *segments, scalings, base), ELEMENTWISE_TOL[dtype]),
    ]  # fmt: skip


def check_moe(run: Run, dtype: torch.dtype) -> list[dict]:
    tokens, hidden, inter, experts, top_k = run.sizes.moe
    x = run.randn(tokens, hidden, dtype=dtype, seed=100)
    w13 = run.randn(experts, 2 * inter, hidden, dtype=dtype, seed=101, scale=hidden**-0.5)
    w2 = run.randn(experts, hidden, inter, dtype=dtype, seed=102, scale=inter**-0.5)
    router = run.randn(tokens, experts, dtype=torch.float32, seed=103)
    topk_weights, topk_ids = torch.softmax(router, dim=-1).topk(top_k, dim=-1)
    topk_weights = topk_weights / topk_weights.sum(-1, keepdim=True)
    args = (x, w13, w2, topk_ids, topk_weights)
    shape = f"T {tokens}, H {hidden}, I {inter}, {experts} experts top-{top_k}"
    return [check_row("fused moe", dtype, shape, triton_fused_moe(*args), fused_moe(*args),
                      MOE_TOL)]  # fmt: skip


def correctness(run: Run) -> list[dict]:
    checks: list[tuple[str, Callable[..., list[dict]], tuple[torch.dtype, ...], dict]] = [
        ("extend attention", check_extend, (torch.float32, *HALF), {}),
        ("decode attention", check_decode, (torch.float32, *HALF), {}),
        ("extend attention window/cap", check_extend, (torch.bfloat16,), {"variant": True}),
        ("decode attention window/cap", check_decode, (torch.bfloat16,), {"variant": True}),
        ("kv store", check_kv_store, HALF, {}),
        ("rmsnorm", check_rms_norm, HALF, {}),
        ("rope", check_rope, HALF, {}),
        ("silu and mul", check_silu, HALF, {}),
        ("bitmask", check_bitmask, (torch.float32, torch.bfloat16), {}),
        ("sampling", check_sampling, (torch.float32,), {}),
        ("lora", check_lora, HALF, {}),
        ("fused moe", check_moe, HALF, {}),
    ]  # fmt: skip
    rows: list[dict] = []
    for name, check, dtypes, kwargs in checks:
        for dtype in dtypes:
            # ~2-4 s per kernel on a GPU, mostly Triton compiling it
            if not run.allows(f"correctness {name} {DTYPE_NAMES[dtype]}", 4):
                continue
            try:
                new = check(run, dtype, **kwargs)
            except Exception as exc:  # report and go on: one broken kernel must not hide others
                new = [{"kernel": name, "dtype": DTYPE_NAMES[dtype], "shape": "-",
                        "max_abs_err": None, "tolerance": f"raised {type(exc).__name__}: {exc}",
                        "pass": False}]  # fmt: skip
            for row in new:
                print(f"  {row['kernel']:34s} {row['dtype']:5s} err {_err_text(row['max_abs_err'])}"
                      f"  {'PASS' if row['pass'] else 'FAIL'}", flush=True)
            rows.extend(new)
    return rows


# -- 2. bandwidth ---------------------------------------------------------------------------
def bandwidth_row(run: Run, kernel: str, shape: str, nbytes: int, triton_fn, torch_fn,
                  target: float | None = None) -> dict[str, Any]:
    triton_ms, torch_ms = run.bench_ms(triton_fn), run.bench_ms(torch_fn)
    gbs = nbytes / (triton_ms * 1e-3) / 1e9
    peak_share = gbs * 1e9 / run.peak if run.peak else None
    row = {"kernel": kernel, "shape": shape, "mbytes": nbytes / 1e6, "triton_us": triton_ms * 1e3,
           "triton_gbs": gbs, "pct_peak": 100 * peak_share if peak_share is not None else None,
           "torch_us": torch_ms * 1e3, "torch_gbs": nbytes / (torch_ms * 1e-3) / 1e9,
           "speedup_vs_torch": torch_ms / triton_ms, "target": None, "target_met": None}
    if target is not None:
        row["target"] = f">= {100 * target:.0f}% peak"
        row["target_met"] = peak_share >= target if peak_share is not None else None
    pct = f"  {100 * peak_share:.0f}% peak" if peak_share is not None else ""
    print(f"  {kernel:44s} {gbs:8.1f} GB/s{pct}  (torch {row['torch_gbs']:.1f} GB/s)",
          flush=True)
    return row


def bench_decode(run: Run, shuffle: bool) -> dict[str, Any]:
    hq, hkv, d = run.sizes.heads
    batch, ctx = run.sizes.decode_bench
    dtype = torch.bfloat16
    pool = make_pool(run, [(ctx - 1, 1)] * batch, hkv, d, dtype, seed=200, shuffle=shuffle)
    q = run.randn(batch, hq, d, dtype=dtype, seed=203)
    shape = AttentionShape(hq, hkv, d)
    args = (q, pool.k_buffer, pool.v_buffer, pool.req_to_token, pool.rows, pool.seq_lens)
    t_plan = triton_plan_decode(pool.req_to_token, pool.rows, pool.seq_lens, shape)
    r_plan = plan_decode(pool.req_to_token, pool.rows, pool.seq_lens, shape)
    scale = 1 / math.sqrt(d)
    nbytes = (2 * batch * ctx * hkv * d + 2 * batch * hq * d) * dtype.itemsize
    label = f"decode attention ({'scattered' if shuffle else 'contiguous'} slots)"
    return bandwidth_row(
        run, label, f"B {batch} x ctx {ctx}, {hq}/{hkv}x{d} bf16, {t_plan.num_kv_splits} splits",
        nbytes, lambda: triton_decode_attention(*args, sm_scale=scale, plan=t_plan),
        lambda: decode_attention(*args, sm_scale=scale, plan=r_plan), target=DECODE_TARGET_PEAK,
    )  # fmt: skip


def bench_rms_norm(run: Run, fused: bool) -> dict[str, Any]:
    n, h = run.sizes.norm_bench
    x = run.randn(n, h, dtype=torch.bfloat16, seed=210)
    res = run.randn(n, h, dtype=torch.bfloat16, seed=211) if fused else None
    w = run.randn(h, dtype=torch.bfloat16, seed=212)
    nbytes = (4 if fused else 2) * n * h * 2 + h * 2
    return bandwidth_row(run, "rmsnorm" + (" + residual" if fused else ""), f"{n}x{h} bf16",
                         nbytes, lambda: triton_rms_norm(x, w, 1e-6, residual=res),
                         lambda: rms_norm(x, w, 1e-6, residual=res))  # fmt: skip


def bench_rope(run: Run) -> dict[str, Any]:
    hq, hkv, d = run.sizes.heads
    n = run.sizes.rope_bench
    q = run.randn(n, hq, d, dtype=torch.bfloat16, seed=220)
    k = run.randn(n, hkv, d, dtype=torch.bfloat16, seed=221)
    positions = torch.randint(0, 8192, (n,), generator=run.generator(222), device=run.device)
    cache = build_rope_cache(d, 8192, 500000.0, device=run.device)
    # q and k read and written, one fp32 cache row and a position per token
    nbytes = 2 * n * (hq + hkv) * d * 2 + n * (d * 4 + 8)
    return bandwidth_row(run, "rope neox", f"{n} tokens, {hq}/{hkv}x{d} bf16", nbytes,
                         lambda: triton_apply_rope(q, k, positions, cache),
                         lambda: apply_rope(q, k, positions, cache))  # fmt: skip


def bench_silu(run: Run) -> dict[str, Any]:
    n, i = run.sizes.silu_bench
    x = run.randn(n, 2 * i, dtype=torch.bfloat16, seed=230)
    return bandwidth_row(run, "silu and mul", f"{n}x{2 * i} bf16", 3 * n * i * 2,
                         lambda: triton_silu_and_mul(x), lambda: silu_and_mul(x))  # fmt: skip


def bench_bitmask(run: Run) -> dict[str, Any]:
    batch, vocab = run.sizes.bitmask_bench
    logits = run.randn(batch, vocab, dtype=torch.float32, seed=240)
    allowed = torch.rand(batch, vocab, generator=run.generator(241), device=run.device) < 0.3
    bitmask = pack_allowed(allowed)
    # bitmask read + every logit written once (70% are masked: every sector is touched)
    nbytes = bitmask.numel() * 4 + logits.numel() * 4
    return bandwidth_row(run, "bitmask apply", f"{batch}x{vocab} fp32", nbytes,
                         lambda: triton_apply_token_bitmask(logits, bitmask),
                         lambda: apply_token_bitmask(logits, bitmask))  # fmt: skip


def bench_kv_store(run: Run) -> dict[str, Any]:
    _, hkv, d = run.sizes.heads
    n = run.sizes.kv_bench
    k, v = (run.randn(n, hkv, d, dtype=torch.bfloat16, seed=s) for s in (250, 251))
    k_buf, v_buf = (torch.zeros(4 * n, hkv, d, dtype=torch.bfloat16, device=run.device)
                    for _ in range(2))  # fmt: skip
    loc = torch.randperm(4 * n, generator=run.generator(252), device=run.device)[:n]
    nbytes = 4 * n * hkv * d * 2 + n * 8
    return bandwidth_row(run, "kv store", f"{n} tokens, {hkv}x{d} bf16", nbytes,
                         lambda: triton_store_kv(k_buf, v_buf, loc, k, v),
                         lambda: store_kv(k_buf, v_buf, loc, k, v))  # fmt: skip


def bandwidth(run: Run) -> list[dict]:
    benches = [
        ("decode attention contiguous", lambda: bench_decode(run, shuffle=False), 15),
        ("decode attention scattered", lambda: bench_decode(run, shuffle=True), 10),
        ("rmsnorm", lambda: bench_rms_norm(run, fused=False), 4),
        ("rmsnorm + residual", lambda: bench_rms_norm(run, fused=True), 4),
        ("rope", lambda: bench_rope(run), 4),
        ("silu and mul", lambda: bench_silu(run), 4),
        ("bitmask", lambda: bench_bitmask(run), 4),
        ("kv store", lambda: bench_kv_store(run), 4),
    ]
    rows = []
    for name, bench, cost in benches:
        if run.allows(f"bandwidth {name}", cost):
            rows.extend(run.guarded(f"bandwidth {name}", lambda bench=bench: [bench()]))
            _free(run)
    return rows


# -- 3. extend attention vs SDPA ------------------------------------------------------------
def bench_extend(run: Run, label: str, batch: int, prefix: int, new: int,
                 heads: tuple[int, int, int] | None = None,
                 config: dict[str, int] | None = None) -> dict[str, Any]:
    """Triton extend attention vs SDPA on one case; `config` overrides the launch shape
    (`triton_plan_extend`'s block_m, block_n, num_warps, num_stages)."""
    hq, hkv, d = heads or run.sizes.heads
    dtype = torch.bfloat16
    pool = make_pool(run, [(prefix, new)] * batch, hkv, d, dtype, seed=300, shuffle=False)
    q = run.randn(batch * new, hq, d, dtype=dtype, seed=303)
    scale = 1 / math.sqrt(d)
    args = (q, pool.k_buffer, pool.v_buffer, pool.req_to_token, pool.rows, pool.prefixes,
            pool.extends)  # fmt: skip
    plan = triton_plan_extend(pool.req_to_token, pool.rows, pool.prefixes, pool.extends,
                              AttentionShape(hq, hkv, d), **(config or {}))  # fmt: skip

    def ours() -> Tensor:
        return triton_extend_attention(*args, sm_scale=scale, plan=plan)

    # SDPA gets [B, H, S, D] copies, kv heads repeated to the q heads (not timed).
    slots = pool.req_to_token[pool.rows, : prefix + new]  # request order
    k_s, v_s = (buf[slots].transpose(1, 2).repeat_interleave(hq // hkv, dim=1).contiguous()
                for buf in (pool.k_buffer, pool.v_buffer))  # fmt: skip
    q_s = q.view(batch, new, hq, d).transpose(1, 2).contiguous()
    mask_kwargs: dict[str, Any] = (
        {"is_causal": True} if prefix == 0 else {"attn_mask": causal_lower_right(new, prefix + new)}
    )

    def sdpa() -> Tensor:
        return F.scaled_dot_product_attention(q_s, k_s, v_s, scale=scale, **mask_kwargs)

    err = (ours().float() - sdpa().transpose(1, 2).reshape(q.shape).float()).abs().max().item()
    ours_ms, sdpa_ms = run.bench_ms(ours), run.bench_ms(sdpa)
    pairs = batch * (new * prefix + new * (new + 1) // 2)  # visible (query, key) pairs
    flops = 4 * hq * d * pairs
    row = {"case": label, "config": plan.config._asdict(), "shape": f"B {batch}, prefix {prefix} + new {new}, {hq}/{hkv}x{d} bf16",
           "triton_ms": ours_ms, "triton_tflops": flops / (ours_ms * 1e-3) / 1e12,
           "sdpa_ms": sdpa_ms, "sdpa_tflops": flops / (sdpa_ms * 1e-3) / 1e12,
           "ratio_vs_sdpa": sdpa_ms / ours_ms, "max_abs_err_vs_sdpa": err,
           "target": f">= {EXTEND_TARGET_RATIO}x SDPA",
           "target_met": sdpa_ms / ours_ms >= EXTEND_TARGET_RATIO}  # fmt: skip
    print(f"  {label:14s} triton {row['triton_tflops']:.1f} TFLOP/s  SDPA "
          f"{row['sdpa_tflops']:.1f} TFLOP/s  ratio {row['ratio_vs_sdpa']:.2f}  err {err:.1e}",
          flush=True)
    return row


def extend_vs_sdpa(run: Run) -> list[dict]:
    rows = []
    for label, batch, prefix, new in run.sizes.extend_bench:
        if run.allows(f"extend vs SDPA {label}", 10):
            case = (label, batch, prefix, new)
            rows.extend(run.guarded(f"extend vs SDPA {label}",
                                    lambda case=case: [bench_extend(run, *case)]))
            _free(run)
    return rows


# -- 4. engine decode throughput ------------------------------------------------------------
def engine_throughput(run: Run, repeats: int, rows: list[dict]) -> list[dict]:
    """Appends one row per (batch, backend) to `rows` (kept if a later batch raises)."""
    sizes = run.sizes
    dtype_name = "bfloat16" if run.cuda else "float32"
    # saving the model and loading it twice, then each batch checks again
    engine_cost = 45 if run.cuda else 10
    if not run.allows("engine throughput", engine_cost):
        return rows
    with tempfile.TemporaryDirectory() as tmp:
        with torch.device(run.device):  # build the random weights on the GPU: much faster
            gpu_engine.save_random("llama", Path(tmp), gpu_engine.DTYPES[dtype_name], **sizes.model)
        params = sum(
            (sizes.model["vocab_size"] * sizes.model["hidden_size"] * 2,
             sizes.model["num_hidden_layers"] * _layer_params(sizes.model)))  # fmt: skip
        print(f"  model: Llama ~{params / 1e9:.2f}B params, {dtype_name}, {run.device}", flush=True)
        max_tokens = 2 * max(sizes.engine_batches) * (sizes.prompt_len + sizes.new_tokens) + 1024
        engines: dict[str, Any] = {}
        try:
            for backend in ("triton", "torch"):
                engines[backend] = sglc.Engine(
                    tmp, device=str(run.device), dtype=dtype_name, attention_backend=backend,
                    max_total_tokens=max_tokens)  # fmt: skip
            for batch in sizes.engine_batches:
                # first batch: Triton compiles the engine's kernels during its warm-up
                if not run.allows(f"engine batch {batch}", 15 if run.cuda else 5):
                    continue
                outputs = {}
                for backend, engine in engines.items():
                    row, outputs[backend] = _measure_engine(run, engine, batch, repeats)
                    rows.append({"backend": backend, **row})
                    print(f"  {backend:6s} batch {batch:3d}: decode {row['decode_tok_s']:9.1f} "
                          f"tok/s  end-to-end {row['e2e_tok_s']:9.1f} tok/s", flush=True)
                pairs = list(zip(outputs["triton"], outputs["torch"], strict=True))
                rows[-2]["same_tokens_as_torch"] = f"{sum(a == b for a, b in pairs)}/{batch}"
                # 16-bit rounding differs between the backends; greedy paths part at near-ties
                rows[-2]["agreeing_prefix_median"] = common.median(
                    [gpu_engine._agree_len(a, b) for a, b in pairs])
        finally:
            for engine in engines.values():
                engine.shutdown()
            del engines
            _free(run)
    return rows


def _layer_params(m: dict[str, int]) -> int:
    h, i = m["hidden_size"], m["intermediate_size"]
    kv = h // m["num_attention_heads"] * m["num_key_value_heads"]
    return 2 * h * h + 2 * h * kv + 3 * h * i + 2 * h


def _measure_engine(run: Run, engine, batch: int, repeats: int):
    """Median seconds of a prefill (1 new token) and a full run over fresh prompts each
    (no prefix-cache hits); decode tok/s = batch * (new - 1) / (full - prefill)."""
    sizes, vocab = run.sizes, run.sizes.model["vocab_size"]
    calls = 0

    def prompts() -> list[list[int]]:
        nonlocal calls
        calls += 1
        gen = torch.Generator().manual_seed(1000 * batch + calls)
        return torch.randint(3, vocab, (batch, sizes.prompt_len), generator=gen).tolist()

    engine.generate(prompts(), common.greedy_params(4))  # warm-up: compiles for this batch
    prefill, full, tokens = [], [], []
    for _ in range(repeats):
        prefill.append(_timed_generate(run, engine, prompts(), 1)[0])
        seconds, outputs = _timed_generate(run, engine, prompts(), sizes.new_tokens)
        full.append(seconds)
        tokens = [o.token_ids for o in outputs]
    t_prefill, t_full = common.median(prefill), common.median(full)
    new = sizes.new_tokens
    return ({"batch": batch, "prompt": sizes.prompt_len, "new_tokens": new,
             "prefill_s": t_prefill, "full_s": t_full,
             "decode_tok_s": batch * (new - 1) / max(t_full - t_prefill, 1e-9),
             "e2e_tok_s": batch * new / t_full}, tokens)  # fmt: skip


def _timed_generate(run: Run, engine, prompts: list[list[int]], new_tokens: int):
    """(seconds, outputs) of one greedy `generate` call, synchronised on CUDA."""
    box: dict[str, Any] = {}

    def call() -> None:
        box["out"] = engine.generate(prompts, common.greedy_params(new_tokens))

    return gpu_engine._timed(call, str(run.device)), box["out"]


# -- main -----------------------------------------------------------------------------------
def _free(run: Run) -> None:
    gc.collect()
    if run.cuda:
        torch.cuda.empty_cache()


def _err_text(err: float | int | None) -> str:
    if err is None or isinstance(err, int):
        return "-" if err is None else str(err)
    return "0" if err == 0 else f"{err:.1e}"


def _yes(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "NO")


def print_tables(result: dict[str, Any]) -> None:
    if result["correctness"]:
        print("\n== correctness: Triton vs PyTorch reference, same inputs ==")
        print(common.format_table(
            ["kernel", "dtype", "shape", "max abs err", "tolerance", "result"],
            [[r["kernel"], r["dtype"], r["shape"], _err_text(r["max_abs_err"]), r["tolerance"],
              "PASS" if r["pass"] else "FAIL"] for r in result["correctness"]]))  # fmt: skip
    if result["bandwidth"]:
        peak = result["environment"]["hbm_peak_tbs"]
        print(f"\n== bandwidth (HBM peak {f'{peak} TB/s' if peak else 'unknown'}) ==")
        print(common.format_table(
            ["kernel", "shape", "MB", "triton us", "GB/s", "% peak", "torch us", "torch GB/s",
             "x torch", "target", "met"],
            [[r["kernel"], r["shape"], r["mbytes"], r["triton_us"], r["triton_gbs"],
              r["pct_peak"], r["torch_us"], r["torch_gbs"], r["speedup_vs_torch"], r["target"],
              _yes(r["target_met"])] for r in result["bandwidth"]]))  # fmt: skip
    if result["extend_vs_sdpa"]:
        print("\n== extend attention vs torch SDPA (causal) ==")
        print(common.format_table(
            ["case", "shape", "triton ms", "TFLOP/s", "SDPA ms", "SDPA TFLOP/s", "ratio",
             "err vs SDPA", "target", "met"],
            [[r["case"], r["shape"], r["triton_ms"], r["triton_tflops"], r["sdpa_ms"],
              r["sdpa_tflops"], r["ratio_vs_sdpa"], f"{r['max_abs_err_vs_sdpa']:.1e}",
              r["target"], _yes(r["target_met"])] for r in result["extend_vs_sdpa"]]))  # fmt: skip
    if result["engine"]:
        print("\n== engine decode throughput (random-weight Llama) ==")
        print(common.format_table(
            ["backend", "batch", "prompt", "new", "prefill s", "total s", "decode tok/s",
             "e2e tok/s", "same tokens", "agreeing prefix (median)"],
            [[r["backend"], r["batch"], r["prompt"], r["new_tokens"], r["prefill_s"], r["full_s"],
              r["decode_tok_s"], r["e2e_tok_s"], r.get("same_tokens_as_torch", "-"),
              r.get("agreeing_prefix_median", "-")]
             for r in result["engine"]]))  # fmt: skip
    for note in result["skipped"]:
        print(f"skipped: {note}")
    for note in result["errors"]:
        print(f"ERROR: {note}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(ap, repeats=1)  # --repeats: engine runs (median); --quick; --out
    ap.add_argument("--cpu-smoke", action="store_true",
                    help="tiny shapes on CPU under TRITON_INTERPRET=1: checks the logic only")
    ap.add_argument("--skip-engine", action="store_true", help="kernels only")
    ap.add_argument("--budget", type=float, default=270.0,
                    help="seconds; sections that would end later are skipped (default 270)")
    ap.add_argument("--peak-tbs", type=float, default=None,
                    help="HBM peak in TB/s for a card not recognised by name")
    return ap.parse_args(argv)


def main() -> int:
    args = parse_args()
    if args.cpu_smoke:
        common.set_threads(args.threads)
        device = torch.device("cpu")
        name = "cpu (Triton interpreter)"
    else:
        if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
            print("TRITON_INTERPRET is set: unset it, or pass --cpu-smoke", file=sys.stderr)
            return 2
        if not torch.cuda.is_available():
            print("no CUDA device: run with --cpu-smoke for a logic check", file=sys.stderr)
            return 2
        device = torch.device("cuda")
        name = torch.cuda.get_device_name(device)
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 references stay fp32
    peak = args.peak_tbs * 1e12 if args.peak_tbs else (hbm_peak(name) if device.type == "cuda"
                                                          else None)  # fmt: skip
    sizes = SMOKE if args.cpu_smoke else (QUICK if args.quick else FULL)
    run = Run(device, sizes, args.budget, peak)
    env = {**common.environment(), "device": name, "triton": triton.__version__,
           "cuda": torch.version.cuda, "hbm_peak_tbs": peak / 1e12 if peak else None,
           "mode": "cpu-smoke" if args.cpu_smoke else ("quick" if args.quick else "full"),
           "budget_s": args.budget}  # fmt: skip
    print(f"device: {name}; torch {torch.__version__}; triton {triton.__version__}; "
          f"mode {env['mode']}; budget {args.budget:.0f}s", flush=True)

    result: dict[str, Any] = {"environment": env, "sizes": sizes}
    print("\n-- 1. correctness", flush=True)
    result["correctness"] = correctness(run)
    print("\n-- 2. bandwidth", flush=True)
    result["bandwidth"] = bandwidth(run)
    print("\n-- 3. extend attention vs SDPA", flush=True)
    result["extend_vs_sdpa"] = extend_vs_sdpa(run)
    result["engine"] = []
    if args.skip_engine:
        run.skipped.append("engine throughput: --skip-engine")
    else:
        print("\n-- 4. engine decode throughput", flush=True)
        run.guarded("engine throughput",
                    lambda: engine_throughput(run, args.repeats, result["engine"]))
    result["skipped"] = run.skipped
    result["errors"] = run.errors
    result["elapsed_s"] = run.elapsed()
    failed = [f"{r['kernel']} {r['dtype']}" for r in result["correctness"] if not r["pass"]]
    result["all_correct"] = not failed

    print_tables(result)
    out = common.write_json("gpu_kernels_cpu_smoke" if args.cpu_smoke else "gpu_kernels",
                            result, args.out)
    print(f"\ncorrectness: {'all PASS' if not failed else 'FAIL: ' + ', '.join(failed)} "
          f"({len(result['correctness'])} checks); {run.elapsed():.0f}s; wrote {out}")
    if run.errors:
        print(f"{len(run.errors)} benchmark(s) raised: see ERROR lines above")
    return 1 if failed or run.errors else 0


if __name__ == "__main__":
    sys.exit(main())
