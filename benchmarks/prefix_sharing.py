"""Prefix sharing: sglc.Engine with the radix cache on vs off on few-shot-style requests.

64 requests share one ~1,000-token prefix and differ in a ~32-token question, 16 greedy
output tokens each (seeded random token ids). Reports the prefill tokens the engine
computed (engine stats) and the wall time of one `generate` call over all requests.
Run `python benchmarks/prefix_sharing.py --help` for the options.
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the script runs from any directory)

NAME = "prefix_sharing"
CONFIGS = {"radix cache off": True, "radix cache on": False}  # name -> disable_radix_cache


def make_prompts(args: argparse.Namespace, vocab_size: int) -> list[list[int]]:
    rng = random.Random(args.seed)
    (prefix,) = common.random_prompts(rng, [args.prefix_len], vocab_size)
    questions = common.random_prompts(rng, [args.question_len] * args.num_requests, vocab_size)
    return [prefix + q for q in questions]


def engine_options(args: argparse.Namespace, disable_radix_cache: bool) -> dict:
    return dict(
        dtype="float32", max_total_tokens=args.max_total_tokens, policy=args.policy,
        chunked_prefill_size=args.chunked_prefill_size, max_context_len=args.max_context_len,
        disable_radix_cache=disable_radix_cache,
    )


def run(path: Path, prompts: list[list[int]], output_len: int, options: dict) -> dict:
    """One cold run: a fresh engine (empty cache), all requests in one timed generate call."""
    import sglc

    engine = sglc.Engine(path, **options)
    try:
        with common.timed() as t:
            outs = engine.generate(prompts, common.greedy_params(output_len))
        stats = engine.stats()
    finally:
        engine.shutdown()
    return {
        "seconds": t.seconds,
        "num_prefill_tokens": stats["num_prefill_tokens"],
        "num_extend_batches": stats["num_extend_batches"],
        "num_decode_batches": stats["num_decode_batches"],
        "num_retractions": stats.get("num_retractions"),
        # usage, not stats()["cache"]: the cache's own counters also count the re-match
        # that follows each insert, so they overstate hits
        "cached_prompt_tokens": sum(o.usage.cached_tokens for o in outs),
        "output_tokens": sum(len(o.token_ids) for o in outs),
        "_outputs": [list(o.token_ids) for o in outs],
    }


def hf_reference(path: Path, prompts: list[list[int]], output_len: int) -> list[list[int]]:
    """Greedy transformers outputs, one request at a time (no padding)."""
    import torch
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    model.generation_config.eos_token_id = None  # ignore_eos, as in sglc
    refs = []
    with torch.inference_mode():
        for p in prompts:
            ids = torch.tensor([p])
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                 max_new_tokens=output_len, do_sample=False, pad_token_id=0)
            refs.append(out[0, len(p):].tolist())
    return refs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(p, repeats=3)
    p.add_argument("--num-requests", type=int, default=64)
    p.add_argument("--prefix-len", type=int, default=1000)
    p.add_argument("--question-len", type=int, default=32)
    p.add_argument("--output-len", type=int, default=16)
    p.add_argument("--policy", default="lpm")
    p.add_argument("--chunked-prefill-size", type=int, default=2048)
    p.add_argument("--max-context-len", type=int, default=2048)
    p.add_argument("--max-total-tokens", type=int, default=72000,
                   help="KV pool slots, the same for both configs; the default holds all "
                        "requests without the cache, so neither side retracts")
    p.add_argument("--hf-check", type=int, default=2,
                   help="also compare the first N requests with transformers greedy (default 2)")
    args = p.parse_args(argv)
    if args.quick:
        args.num_requests, args.prefix_len, args.question_len, args.output_len = 8, 200, 16, 4
        args.repeats, args.hf_check = 1, 1
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    env_start, spec, path = common.start(args.threads)
    prompts = make_prompts(args, spec.vocab_size)
    print(f"model: {spec.name} (~40M params, tied embeddings), fp32, CPU, "
          f"{args.threads} torch threads")
    print(f"workload: {args.num_requests} requests = shared {args.prefix_len}-token prefix + "
          f"distinct {args.question_len}-token question, {args.output_len} output tokens each, "
          f"seed {args.seed}; {sum(map(len, prompts))} prompt tokens in all")
    print(f"sglc options (both): {engine_options(args, False) | {'disable_radix_cache': '-'}}")

    warm = [prompts[0][:16]]
    common.run_in_thread(lambda: run(path, warm, 2, engine_options(args, True)))  # not measured
    systems = {
        name: (lambda rep, off=off: run(path, prompts, args.output_len, engine_options(args, off)))
        for name, off in CONFIGS.items()
    }
    results = common.interleave(systems, args.repeats)
    refs = common.run_in_thread(
        lambda: hf_reference(path, prompts[: args.hf_check], args.output_len)
    ) if args.hf_check else []
    report = summarize(args, env_start, spec, prompts, results, refs)
    out = common.write_json(NAME, report, args.out)
    print(f"\nwrote {out}")
    return report


def summarize(args, env_start, spec, prompts, results, refs) -> dict:
    summary = {}
    for name, runs in results.items():
        first = runs[0]
        summary[name] = {
            "median_seconds": common.median([r["seconds"] for r in runs]),
            "num_prefill_tokens": first["num_prefill_tokens"],
            "num_extend_batches": first["num_extend_batches"],
            "num_decode_batches": first["num_decode_batches"],
            "cached_prompt_tokens": first["cached_prompt_tokens"],
            "runs": [{k: v for k, v in r.items() if not k.startswith("_")} for r in runs],
        }
    off, on = summary["radix cache off"], summary["radix cache on"]
    fewer = common.ratio(off["num_prefill_tokens"], on["num_prefill_tokens"])
    faster = common.ratio(off["median_seconds"], on["median_seconds"])
    cols = ["config", "prefill tok", "cached prompt tok", "extend batches", "decode batches",
            "wall s"]
    keys = ["num_prefill_tokens", "cached_prompt_tokens", "num_extend_batches",
            "num_decode_batches", "median_seconds"]
    rows = [[name, *(s[k] for k in keys)] for name, s in summary.items()]
    rows.append(["ratio off / on", fewer, None, None, None, faster])

    on_out = results["radix cache on"][0]["_outputs"]
    off_out = results["radix cache off"][0]["_outputs"]
    correctness = {
        "on_vs_off_mismatches": sum(a != b for a, b in zip(on_out, off_out, strict=True)),
        "compared": len(on_out),
        "repeats_identical": all(r["_outputs"] == runs[0]["_outputs"]
                                 for runs in results.values() for r in runs),
        "hf_compared": len(refs),
        "hf_mismatches": sum(a != b for a, b in zip(on_out, refs, strict=False)),
    }

    print(f"\n== {NAME}: {args.repeats} repeat(s), median wall time ==")
    print(common.format_table(cols, rows))
    print(f"\nprefill tokens {fewer:.1f}x fewer (target >= 5x), wall time {faster:.2f}x faster "
          "(target >= 3x)")
    print("notes: a fresh engine (cold cache) per run, engine construction not timed; prefill "
          "tokens are the engine's num_prefill_tokens counter; cached prompt tokens from "
          "Output.usage.")
    print(f"correctness: radix on vs off: {correctness['on_vs_off_mismatches']} of "
          f"{correctness['compared']} requests differ; identical across repeats: "
          f"{correctness['repeats_identical']}; vs transformers greedy (first "
          f"{len(refs)}): {correctness['hf_mismatches']} differ")

    return {
        "benchmark": NAME,
        "env": env_start,
        "load_avg_1m_end": common.environment()["load_avg_1m"],
        "model": {**asdict(spec), "name": spec.name},
        "workload": {
            "num_requests": args.num_requests, "prefix_len": args.prefix_len,
            "question_len": args.question_len, "output_len": args.output_len, "seed": args.seed,
            "prompt_tokens": sum(map(len, prompts)),
        },
        "sglc_options": engine_options(args, False) | {"disable_radix_cache": "varied"},
        "repeats": args.repeats,
        "results": summary,
        "prefill_token_ratio": fewer,
        "speedup": faster,
        "targets": {"prefill_token_ratio": 5.0, "speedup": 3.0},
        "correctness": correctness,
    }


if __name__ == "__main__":
    main()
