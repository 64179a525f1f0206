"""Every Triton kernel on CUDA: checked against its PyTorch reference, then measured.

    python benchmarks/gpu_kernels.py                   # on an H100/H200: under 5 minutes
    python benchmarks/gpu_kernels.py --quick           # smaller shapes
    python benchmarks/gpu_kernels.py --skip-engine     # kernels only
    TRITON_INTERPRET=1 python benchmarks/gpu_kernels.py --cpu-smoke   # logic check, no GPU

1. Correctness: each Triton kernel (extend and decode attention over plain and int8 / int4
   quantized KV pools, KV store plain and quantizing, RMSNorm with and
   without the fused residual, RoPE, SiLU-and-mul, bitmask apply, LoRA shrink and expand,
   fused MoE) and its reference run on the same CUDA inputs (bf16 and fp16; fp32 too for
   attention); the max abs error and PASS/FAIL against the stated tolerance
   (``|out - ref| <= atol + rtol * |ref|`` everywhere; exact where the op is a copy).
2. Bandwidth: GB/s and % of the card's HBM peak (H100 SXM 3.35 TB/s, H200 4.8 TB/s; other
   cards GB/s only, or pass ``--peak-tbs``) of decode attention (batch 64 x 4k context, 32 q /
   8 kv heads, head dim 128, bf16; bytes = K + V read + q read + out written; and over
   int8 / int4 pools, bytes = codes + scales + zeros read + q + out), RMSNorm,
   RoPE, SiLU-and-mul, bitmask apply and KV store, next to the torch reference's time.
   Target: decode attention >= 60% of peak.
3. Extend attention TFLOP/s next to ``F.scaled_dot_product_attention`` (causal, kv heads
   repeated for it, same shapes): batch 4 x 2k new tokens, and 4 x 512 over a cached
   1.5k prefix. Target: >= 0.8x SDPA.
4. Engine decode throughput: a random-weight ~1B Llama (hidden 2048, 16 layers, 32 / 8
   heads, intermediate 5632, vocab 32000), bf16, batch 1 / 16 / 64, 128-token prompts and
   64 new tokens, ``kernel_backend="triton"`` vs ``"torch"``. Decode tok/s excludes the
   prefill (timed separately with one new token on fresh prompts).

Kernel timings are ``triton.testing.do_bench`` medians (CUDA events, L2 flushed between
runs). A time guard skips what would end past ``--budget`` seconds (default 270) and says so.
``--cpu-smoke`` runs the same code on tiny shapes on CPU under Triton's interpreter (it sets
``TRITON_INTERPRET=1`` before anything imports Triton) and times with ``time.perf_counter``:
its numbers mean nothing, it only exercises the logic. Prints one table per section and
writes benchmarks/out/gpu_kernels.json (gpu_kernels_cpu_smoke.json with --cpu-smoke).
Exit status 1 if a correctness check fails or a benchmark raises (the rest still runs).
Section 1 lives in gpu_kernel_checks.py; shapes, the run's clock and the attention inputs in
gpu_setup.py (shared with gpu_extend_tune.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_setup  # noqa: E402,I001,F401  (first: sets TRITON_INTERPRET under --cpu-smoke)

import argparse  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import triton  # noqa: E402
from torch import Tensor  # noqa: E402
from torch.nn.attention.bias import causal_lower_right  # noqa: E402

import common  # noqa: E402
import gpu_engine  # noqa: E402
from gpu_kernel_checks import correctness  # noqa: E402
from gpu_setup import (  # noqa: E402
    DECODE_TARGET_PEAK, EXTEND_TARGET_RATIO, FULL, QUICK, SMOKE, Run, _err_text, _free,
    hbm_peak, make_pool, quantized_kv,
)  # fmt: skip

import sglc  # noqa: E402
from sglc.kernels import AttentionShape  # noqa: E402
from sglc.kernels.activation import silu_and_mul  # noqa: E402
from sglc.kernels.bitmask import apply_token_bitmask, pack_allowed  # noqa: E402
from sglc.kernels.decode_attention import decode_attention, plan_decode  # noqa: E402
from sglc.kernels.kv_quant import bytes_per_row  # noqa: E402
from sglc.kernels.kv_store import store_kv  # noqa: E402
from sglc.kernels.rmsnorm import rms_norm  # noqa: E402
from sglc.kernels.rope import apply_rope, build_rope_cache  # noqa: E402
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
from sglc.kernels.triton_rmsnorm import triton_rms_norm  # noqa: E402
from sglc.kernels.triton_rope import triton_apply_rope  # noqa: E402



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


def bench_decode_quant(run: Run, bits: int) -> dict[str, Any]:
    hq, hkv, d = run.sizes.heads
    batch, ctx = run.sizes.decode_bench
    dtype = torch.bfloat16
    pool = make_pool(run, [(ctx - 1, 1)] * batch, hkv, d, dtype, seed=200, shuffle=False)
    k_buf, v_buf = quantized_kv(run, pool, bits)
    q = run.randn(batch, hq, d, dtype=dtype, seed=203)
    shape = AttentionShape(hq, hkv, d)
    args = (q, k_buf, v_buf, pool.req_to_token, pool.rows, pool.seq_lens)
    t_plan = triton_plan_decode(pool.req_to_token, pool.rows, pool.seq_lens, shape)
    r_plan = plan_decode(pool.req_to_token, pool.rows, pool.seq_lens, shape)
    scale = 1 / math.sqrt(d)
    nbytes = 2 * batch * ctx * bytes_per_row(hkv * d, bits) + 2 * batch * hq * d * dtype.itemsize
    return bandwidth_row(
        run, f"decode attention (int{bits} KV)",
        f"B {batch} x ctx {ctx}, {hq}/{hkv}x{d} bf16 q, {t_plan.num_kv_splits} splits", nbytes,
        lambda: triton_decode_attention(*args, sm_scale=scale, plan=t_plan),
        lambda: decode_attention(*args, sm_scale=scale, plan=r_plan),
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
        ("decode attention int8 KV", lambda: bench_decode_quant(run, 8), 10),
        ("decode attention int4 KV", lambda: bench_decode_quant(run, 4), 10),
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
                    tmp, device=str(run.device), dtype=dtype_name, kernel_backend=backend,
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
