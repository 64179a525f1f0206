"""Section 1 of `gpu_kernels.py`: each Triton kernel against its PyTorch reference on the
same inputs (max abs error, PASS/FAIL against the stated tolerance)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import gpu_setup  # noqa: F401  (before sglc's Triton kernels: sets TRITON_INTERPRET under --cpu-smoke)
import torch
from gpu_setup import (
    ATTN_TOL,
    DTYPE_NAMES,
    ELEMENTWISE_TOL,
    HALF,
    MOE_TOL,
    Run,
    _err_text,
    check_row,
    make_pool,
    quantized_kv,
)  # fmt: skip

from sglc.kernels.activation import silu_and_mul
from sglc.kernels.bitmask import apply_token_bitmask, pack_allowed
from sglc.kernels.decode_attention import decode_attention
from sglc.kernels.extend_attention import extend_attention
from sglc.kernels.kv_quant import allocate, gather_rows
from sglc.kernels.kv_store import store_kv
from sglc.kernels.lora import lora_expand, lora_shrink
from sglc.kernels.moe import fused_moe
from sglc.kernels.rmsnorm import rms_norm
from sglc.kernels.rope import apply_rope, build_rope_cache
from sglc.kernels.triton_activation import triton_silu_and_mul
from sglc.kernels.triton_bitmask import triton_apply_token_bitmask
from sglc.kernels.triton_decode_attention import triton_decode_attention
from sglc.kernels.triton_extend_attention import triton_extend_attention
from sglc.kernels.triton_kv_store import triton_store_kv
from sglc.kernels.triton_lora import triton_lora_expand, triton_lora_shrink
from sglc.kernels.triton_moe import triton_fused_moe
from sglc.kernels.triton_rmsnorm import triton_rms_norm
from sglc.kernels.triton_rope import triton_apply_rope


# -- 1. correctness -------------------------------------------------------------------------
def _attention_options(run: Run, name: str, head_dim: int, variant: bool) -> tuple[str, dict]:
    """(check name, kernel options): the variant adds the sliding window and logit cap."""
    options: dict[str, Any] = {"sm_scale": 1 / math.sqrt(head_dim)}
    if variant:
        window, cap = run.sizes.window_cap
        options.update(sliding_window=window, logit_cap=cap)
        name += f" window {window} cap {cap:g}"
    return name, options


def check_extend(run: Run, dtype: torch.dtype, variant: bool = False) -> list[dict]:
    hq, hkv, d = run.sizes.heads
    pool = make_pool(run, run.sizes.extend_lens, hkv, d, dtype, seed=10, shuffle=True)
    q = run.randn(sum(pool.extends), hq, d, dtype=dtype, seed=13, scale=2.0 if variant else 1.0)
    name, options = _attention_options(run, "extend attention", d, variant)
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
    name, options = _attention_options(run, "decode attention", d, variant)
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


def check_quant_attention(run: Run, dtype: torch.dtype) -> list[dict]:
    """Extend and decode attention over int8 / int4 pools (dequantized inside the kernels)
    against the reference ops on the same codes."""
    hq, hkv, d = run.sizes.heads
    rows = []
    for bits in (8, 4):
        pool = make_pool(run, run.sizes.extend_lens, hkv, d, dtype, seed=110, shuffle=True)
        k_buf, v_buf = quantized_kv(run, pool, bits)
        q = run.randn(sum(pool.extends), hq, d, dtype=dtype, seed=113)
        args = (q, k_buf, v_buf, pool.req_to_token, pool.rows, pool.prefixes, pool.extends)
        options = {"sm_scale": 1 / math.sqrt(d)}
        rows.append(check_row(f"extend attention int{bits} KV", dtype,
                              f"{sum(pool.extends)} new / {sum(pool.seq_lens)} keys, {hq}/{hkv}x{d}",
                              triton_extend_attention(*args, **options),
                              extend_attention(*args, **options), ATTN_TOL[dtype]))
        lens = [(n - 1, 1) for n in run.sizes.decode_seq_lens]
        pool = make_pool(run, lens, hkv, d, dtype, seed=120, shuffle=True)
        k_buf, v_buf = quantized_kv(run, pool, bits)
        window, cap = run.sizes.window_cap
        q = run.randn(len(lens), hq, d, dtype=dtype, seed=123, scale=2.0)
        args = (q, k_buf, v_buf, pool.req_to_token, pool.rows, pool.seq_lens)
        for options in ({}, {"sliding_window": window, "logit_cap": cap}):
            options = {"sm_scale": 1 / math.sqrt(d), **options}
            name = f"decode attention int{bits} KV" + (" window/cap" if len(options) > 1 else "")
            rows.append(check_row(name, dtype, f"seq lens {','.join(map(str, pool.seq_lens))}",
                                  triton_decode_attention(*args, **options),
                                  decode_attention(*args, **options), ATTN_TOL[dtype]))
    return rows


def check_kv_store_quant(run: Run, dtype: torch.dtype) -> list[dict]:
    """The quantizing store against the reference's: float16 scales and zeros exactly, the
    dequantized values within one step (a value on a half step may round either way)."""
    _, hkv, d = run.sizes.heads
    num_tokens, num_slots = run.sizes.kv_store
    loc = torch.randperm(num_slots, generator=run.generator(130), device=run.device)[:num_tokens]
    k = run.randn(num_tokens, hkv, d, dtype=dtype, seed=131, scale=3.0)
    v = run.randn(num_tokens, hkv, d, dtype=dtype, seed=132)
    rows = []
    for bits in (8, 4):
        pools = [allocate(num_slots, hkv, d, bits, run.device) for _ in range(4)]
        triton_store_kv(pools[0], pools[1], loc, k, v)
        store_kv(pools[2], pools[3], loc, k, v)
        shape = f"{num_tokens} tokens -> {num_slots} slots, {hkv}x{d}"
        got, want = pools[:2], pools[2:]
        rows.append(check_row(f"kv store int{bits} scales/zeros", dtype, shape,
                              torch.cat([torch.cat([p.scales, p.zeros]) for p in got]),
                              torch.cat([torch.cat([p.scales, p.zeros]) for p in want]),
                              (0.0, 0.0)))
        step = max(float(p.scales.float().max()) for p in want)
        slots = torch.arange(num_slots, device=run.device)
        rows.append(check_row(f"kv store int{bits} values", dtype, shape,
                              torch.cat([gather_rows(p, slots) for p in got]),
                              torch.cat([gather_rows(p, slots) for p in want]),
                              (step * 1.01, 0.0)))
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
        ("quantized KV attention", check_quant_attention, (torch.float32, torch.bfloat16), {}),
        ("quantized kv store", check_kv_store_quant, (torch.bfloat16,), {}),
        ("rmsnorm", check_rms_norm, HALF, {}),
        ("rope", check_rope, HALF, {}),
        ("silu and mul", check_silu, HALF, {}),
        ("bitmask", check_bitmask, (torch.float32, torch.bfloat16), {}),
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
