"""Quantized KV cache (kv_cache_dtype int8 / int4, FlexGen's group-wise quantization) against
the unquantized cache, on the shipped default model.

- memory: bytes one token's KV takes in the pool (measured on the allocated buffers), and
  how many tokens fit in the bytes the unquantized pool takes (as stored: fp32 on CPU; the
  bf16 ratio is computed from the same layout);
- decode: output tokens/s of one `generate` over R eval prompts (greedy, `ignore_eos`), and the
  decode attention kernel alone over a long context (ms per call), interleaved repeats;
- quality: held-out loss (mean negative log-likelihood per reply token of held-out
  conversations, via `Engine.score`, so the prompt's KV is read back quantized) and greedy
  agreement with the unquantized cache over the default-model eval's held-out prompts
  (every skill): the share of identical outputs and of identical tokens at the same position.

    python benchmarks/kv_quant.py [--quick] [--repeats 3] [--kernel-backend cpu]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the script runs from any directory)

NAME = "kv_quant"
KV_DTYPES = ("auto", "int8", "int4")


def eval_conversations(args: argparse.Namespace, tokenizer) -> tuple[list[str], list[str]]:
    """(prompt, reply) texts of held-out conversations, `--per-skill` of each skill."""
    from sglc.training.data import SKILLS, generate, prompt_messages

    prompts, replies = [], []
    for skill in SKILLS:
        for ex in generate(args.seed, args.per_skill, "heldout", (skill,)):
            prompt = tokenizer.apply_chat_template(prompt_messages(ex), tokenize=False,
                                                   add_generation_prompt=True)
            whole = tokenizer.apply_chat_template(list(ex.messages), tokenize=False)
            prompts.append(prompt)
            replies.append(whole[len(prompt):] if whole.startswith(prompt) else ex.answer)
    return prompts, replies


def pool_bytes_per_token(engine) -> float:
    """Bytes of the allocated K/V buffers (every layer) per pool slot."""
    import torch

    pool = engine.core.runner.kv_pool
    total = 0
    for buffer in pool.k_buffers + pool.v_buffers:
        parts = [buffer] if isinstance(buffer, torch.Tensor) else [buffer.data, buffer.scales,
                                                                   buffer.zeros]
        total += sum(p.numel() * p.element_size() for p in parts)
    return total / pool.num_slots


def quality(engine, prompts: list[str], replies: list[str], max_new_tokens: int) -> dict:
    nll = count = 0.0
    for prompt, reply in zip(prompts, replies, strict=True):
        result = engine.score(prompt, [reply])[0]
        nll -= result.logprob
        count += result.num_tokens
    outs = engine.generate(prompts, {"max_new_tokens": max_new_tokens, "temperature": 0})
    return {"heldout_loss": nll / count, "_greedy": [o.token_ids for o in outs]}


def decode_run(args, options: dict, prompt_ids: list[list[int]]) -> dict:
    import sglc

    with sglc.Engine(max_total_tokens=args.max_total_tokens, **options) as engine:
        engine.generate(prompt_ids[:2], common.greedy_params(4))  # warm up
        with common.timed() as t:
            outs = engine.generate(prompt_ids, common.greedy_params(args.output_len))
    tokens = sum(len(o.token_ids) for o in outs)
    return {"seconds": t.seconds, "tokens_per_s": tokens / t.seconds}


def kernel_run(args, kv_dtype: str, backend: str) -> dict:
    """Decode attention alone: `--kernel-batch` requests of `--kernel-context` keys, the
    default model's head shape (8 query heads, 4 KV heads, dim 32), one layer."""
    import time

    import torch

    from sglc.kernels import get_ops
    from sglc.runtime.mem import KVPool

    ops = get_ops(backend)
    batch, context = args.kernel_batch, args.kernel_context
    pool = KVPool(num_layers=1, num_slots=batch * context + 1, num_kv_heads=4, head_dim=32,
                  dtype=torch.float32, device="cpu", kv_cache_dtype=kv_dtype)
    gen = torch.Generator().manual_seed(0)
    # each request's slots in order, as the allocator hands out fresh pages
    slots = torch.arange(1, batch * context + 1)
    for start in range(0, len(slots), 8192):
        part = slots[start : start + 8192]
        pool.store_kv(0, part, torch.randn(len(part), 4, 32, generator=gen),
                      torch.randn(len(part), 4, 32, generator=gen))
    table = slots.view(batch, context)
    rows, lens = list(range(batch)), [context] * batch
    q = torch.randn(batch, 8, 32, generator=gen)
    k_buf, v_buf = pool.layer(0)
    plan = ops.plan_decode(table, rows, lens, None if backend == "cpu" else _shape())

    def call():
        return ops.decode_attention(q, k_buf, v_buf, table, rows, lens, sm_scale=32**-0.5,
                                    plan=plan)

    call()
    times = []
    for _ in range(args.kernel_iters):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return {"ms_per_call": 1e3 * common.median(times)}


def _shape():
    from sglc.kernels import AttentionShape

    return AttentionShape(8, 4, 32)


def agreement(got: list[list[int]], want: list[list[int]]) -> dict:
    same = sum(g == w for g, w in zip(got, want, strict=True))
    tokens = sum(a == b for g, w in zip(got, want, strict=True)
                 for a, b in zip(g, w, strict=False))
    return {"identical_outputs": same / len(want),
            "token_agreement": tokens / max(sum(len(w) for w in want), 1)}


def quality_parser(doc: str, num_requests_help: str) -> argparse.ArgumentParser:
    """The options kv_quant and weight_quant share: backend, quality eval, decode workload."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    common.add_common_args(p, repeats=3)
    p.add_argument("--kernel-backend", default=None, help="torch or cpu (default: the device's)")
    p.add_argument("--per-skill", type=int, default=10, help="held-out conversations per skill")
    p.add_argument("--eval-tokens", type=int, default=64, help="greedy tokens per eval prompt")
    p.add_argument("--num-requests", type=int, default=32, help=num_requests_help)
    p.add_argument("--output-len", type=int, default=128)
    p.add_argument("--max-total-tokens", type=int, default=16384)
    return p


def shrink_for_quick(args: argparse.Namespace) -> None:
    """--quick: the shared options' smoke-run sizes."""
    args.per_skill, args.eval_tokens, args.num_requests, args.output_len = 2, 16, 4, 16
    args.repeats = 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = quality_parser(__doc__, "decode throughput prompts")
    p.add_argument("--kernel-batch", type=int, default=8)
    p.add_argument("--kernel-context", type=int, default=4096)
    p.add_argument("--kernel-iters", type=int, default=20)
    args = p.parse_args(argv)
    if args.quick:
        shrink_for_quick(args)
        args.kernel_context, args.kernel_iters = 512, 3
    return args


def main(argv: list[str] | None = None) -> dict:
    import torch

    import sglc
    from sglc.kernels import default_backend
    from sglc.runtime.mem import KVPool

    args = parse_args(argv)
    common.set_threads(args.threads)
    env_start = common.environment()
    backend = args.kernel_backend or default_backend("cpu")
    results: dict[str, dict] = {}
    greedy: dict[str, list[list[int]]] = {}
    for name in KV_DTYPES:
        options = {"kv_cache_dtype": name, "kernel_backend": backend}
        with sglc.Engine(max_total_tokens=args.max_total_tokens, **options) as engine:
            prompts, replies = eval_conversations(args, engine.tokenizer)
            measured = quality(engine, prompts, replies, args.eval_tokens)
            cfg = engine.loaded.config
            results[name] = {
                "bytes_per_token": pool_bytes_per_token(engine),
                "bf16_bytes_per_token": KVPool.bytes_per_slot(
                    num_layers=cfg.num_layers, num_kv_heads=cfg.num_kv_heads,
                    head_dim=cfg.head_dim, dtype=torch.bfloat16, kv_cache_dtype=name),
                "heldout_loss": measured["heldout_loss"]}
            greedy[name] = measured.pop("_greedy")
            encoded = [engine.tokenizer.encode(p, add_special_tokens=False) for p in prompts]
            prompt_ids = [encoded[i % len(encoded)] for i in range(args.num_requests)]
        print(f"{name}: {results[name]}", flush=True)
    decode = common.interleave(
        {name: (lambda rep, n=name: decode_run(args, {"kv_cache_dtype": n,
                                                       "kernel_backend": backend}, prompt_ids))
         for name in KV_DTYPES}, args.repeats)
    kernel = common.interleave(
        {name: (lambda rep, n=name: kernel_run(args, n, backend)) for name in KV_DTYPES},
        args.repeats)
    rows = []
    base = results["auto"]
    for name in KV_DTYPES:
        r = results[name]
        r["tokens_in_same_bytes"] = base["bytes_per_token"] / r["bytes_per_token"]
        r["tokens_in_same_bytes_bf16"] = base["bf16_bytes_per_token"] / r["bf16_bytes_per_token"]
        r["decode_tokens_per_s"] = common.median([d["tokens_per_s"] for d in decode[name]])
        r["attention_ms"] = common.median([k["ms_per_call"] for k in kernel[name]])
        r |= agreement(greedy[name], greedy["auto"])
        rows.append([name, r["bytes_per_token"], r["tokens_in_same_bytes"],
                     r["tokens_in_same_bytes_bf16"], r["decode_tokens_per_s"],
                     r["attention_ms"], r["heldout_loss"], r["identical_outputs"],
                     r["token_agreement"]])
    print(f"\n== {NAME}: default model, fp32 on CPU, backend {backend}, {args.repeats} "
          f"repeat(s), medians ==")
    print(common.format_table(
        ["kv dtype", "B/token", "tokens x (fp32)", "tokens x (bf16)", "decode tok/s",
         f"attn ms ({args.kernel_batch}x{args.kernel_context})", "heldout loss",
         "identical", "token agree"], rows))
    return common.save_report(NAME, env_start, args, "sglc default model",
                              kernel_backend=backend, num_eval_prompts=len(greedy["auto"]),
                              results=results)


if __name__ == "__main__":
    main()
