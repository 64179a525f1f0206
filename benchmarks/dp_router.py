"""Data-parallel routing: cache-aware vs round-robin on a multi-tenant workload, dp=2.

Several tenants each have a few-shot prefix; each sends many requests (the prefix plus a
short question), and the tenants' requests arrive interleaved, `--concurrency` in flight at
a time (a closed loop: the next is sent when one returns). Each replica's KV pool holds its
half of the tenants' prefixes with room for the running requests, but not all of them.
Reports the prompt tokens served from the replicas' prefix caches (Output.usage.cached_tokens
over prompt tokens) and the throughput of the whole workload, for `Engine(dp_size=2, dp_router=...)` on the embedded
default model. Run `python benchmarks/dp_router.py --help` for the options.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the script runs from any directory)

NAME = "dp_router"
ROUTERS = ("cache_aware", "round_robin")


def make_prompts(args: argparse.Namespace, vocab_size: int) -> list[list[int]]:
    """Tenant t's k-th request = prefix t + question (t, k); tenants interleaved at random."""
    rng = random.Random(args.seed)
    prefixes = common.random_prompts(rng, [args.prefix_len] * args.num_tenants, vocab_size)
    order = [t for t in range(args.num_tenants) for _ in range(args.requests_per_tenant)]
    rng.shuffle(order)
    return [[1] + prefixes[t] + common.random_prompts(rng, [args.question_len], vocab_size)[0]
            for t in order]


def engine_options(args: argparse.Namespace, router: str) -> dict:
    return dict(dp_size=args.dp, dp_router=router, max_total_tokens=args.max_total_tokens,
                dp_balance_threshold=args.balance_threshold, dtype="float32")


def closed_loop(engine, prompts: list[list[int]], params: dict, concurrency: int) -> list:
    """Send the prompts in order, at most `concurrency` in flight (clients that send their
    next request when one returns); the Outputs in prompt order."""
    slots = threading.Semaphore(concurrency)
    outs: list = [None] * len(prompts)
    done = threading.Event()
    remaining = [len(prompts)]
    lock = threading.Lock()

    def on_output(k: int, out) -> None:
        outs[k] = out
        slots.release()
        with lock:
            remaining[0] -= 1
            if not remaining[0]:
                done.set()

    for k, prompt in enumerate(prompts):
        slots.acquire()
        engine.submit([prompt], params, on_output=lambda out, k=k: on_output(k, out))
    done.wait()
    return outs


def run(prompts: list[list[int]], output_len: int, options: dict, concurrency: int) -> dict:
    """One cold run: fresh replicas (empty caches), the requests sent closed-loop, timed."""
    import sglc

    engine = sglc.Engine(None, **options)
    try:
        engine.generate([[1, 5, 6, 7]], common.greedy_params(2))  # replicas warm, not timed
        with common.timed() as t:
            outs = closed_loop(engine, prompts, common.greedy_params(output_len), concurrency)
        stats = engine.stats()
    finally:
        engine.shutdown()
    prompt_tokens = sum(o.usage.prompt_tokens for o in outs)
    cached = sum(o.usage.cached_tokens for o in outs)
    output_tokens = sum(len(o.token_ids) for o in outs)
    return {
        "seconds": t.seconds, "hit_rate": cached / prompt_tokens,
        "cached_prompt_tokens": cached, "prompt_tokens": prompt_tokens,
        "output_tokens": output_tokens, "requests_per_s": len(outs) / t.seconds,
        "tokens_per_s": (prompt_tokens + output_tokens) / t.seconds,
        "num_prefill_tokens": stats["num_prefill_tokens"],
        "num_retractions": stats["num_retractions"], "routes": stats["routes"],
        "errors": sum(o.error is not None for o in outs),
        "_outputs": [list(o.token_ids) for o in outs],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(p, repeats=2)
    p.add_argument("--dp", type=int, default=2)
    p.add_argument("--num-tenants", type=int, default=10)
    p.add_argument("--requests-per-tenant", type=int, default=10)
    p.add_argument("--prefix-len", type=int, default=300)
    p.add_argument("--question-len", type=int, default=24)
    p.add_argument("--output-len", type=int, default=8)
    p.add_argument("--concurrency", type=int, default=16,
                   help="requests in flight at once (closed loop)")
    p.add_argument("--balance-threshold", type=int, default=32,
                   help="dp_balance_threshold (default 32, the engine's)")
    p.add_argument("--max-total-tokens", type=int, default=2560,
                   help="KV pool slots of each replica (default: 5 of the 10 prefixes "
                        "and the running requests fit, 10 do not)")
    args = p.parse_args(argv)
    if args.quick:
        args.num_tenants, args.requests_per_tenant, args.repeats = 4, 4, 1
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    # NOTE: before any replica starts: each replica process takes its share of the threads
    os.environ["OMP_NUM_THREADS"] = str(max(1, args.threads // args.dp))
    env_start = common.begin(args.threads)
    from sglc.runtime.engine import default_model_path
    from sglc.runtime.models.loader import load_model_info

    cfg, _, _ = load_model_info(default_model_path())
    prompts = make_prompts(args, cfg.vocab_size)
    print(f"model: the embedded default model, fp32, CPU; dp={args.dp} replicas with "
          f"{os.environ['OMP_NUM_THREADS']} torch thread(s) each")
    print(f"workload: {args.num_tenants} tenants x {args.requests_per_tenant} requests, "
          f"interleaved; {args.prefix_len}-token prefix + {args.question_len}-token question, "
          f"{args.output_len} output tokens; {args.concurrency} in flight (closed loop); KV pool "
          f"{args.max_total_tokens} tokens a replica")
    systems = {r: (lambda rep, r=r: run(prompts, args.output_len, engine_options(args, r),
                                        args.concurrency))
               for r in ROUTERS}
    results = common.interleave(systems, args.repeats)
    report = summarize(args, env_start, prompts, results)
    out = common.write_json(NAME, report, args.out)
    print(f"\nwrote {out}")
    return report


def summarize(args, env_start, prompts, results) -> dict:
    summary = {}
    for name, runs in results.items():
        summary[name] = {
            "hit_rate": common.median([r["hit_rate"] for r in runs]),
            "median_seconds": common.median([r["seconds"] for r in runs]),
            "requests_per_s": common.median([r["requests_per_s"] for r in runs]),
            "tokens_per_s": common.median([r["tokens_per_s"] for r in runs]),
            "num_prefill_tokens": runs[0]["num_prefill_tokens"],
            "num_retractions": runs[0]["num_retractions"], "routes": runs[0]["routes"],
            "errors": sum(r["errors"] for r in runs),
            "runs": [{k: v for k, v in r.items() if not k.startswith("_")} for r in runs],
        }
    aware, plain = summary["cache_aware"], summary["round_robin"]
    hit_ratio = common.ratio(aware["hit_rate"], plain["hit_rate"])
    speedup = common.ratio(aware["requests_per_s"], plain["requests_per_s"])
    cols = ["router", "cache hit rate", "prefill tok", "retractions", "req/s", "tok/s", "wall s"]
    keys = ["hit_rate", "num_prefill_tokens", "num_retractions", "requests_per_s",
            "tokens_per_s", "median_seconds"]
    rows = [[name, *(s[k] for k in keys)] for name, s in summary.items()]
    rows.append(["cache_aware / round_robin", hit_ratio, None, None, speedup, None, None])
    same = results["cache_aware"][0]["_outputs"] == results["round_robin"][0]["_outputs"]
    print(f"\n== {NAME}: {args.repeats} repeat(s), medians ==")
    print(common.format_table(cols, rows))
    print(f"\ncache hit rate {hit_ratio:.2f}x (target >= 1.5x), throughput {speedup:.2f}x "
          f"(target > 1x); identical greedy outputs under both routers: {same}")
    print("notes: hit rate = Output.usage.cached_tokens / prompt tokens; fresh replicas per "
          "run, start-up not timed; a shared 2-core machine: throughput is noisy.")
    return {
        "benchmark": NAME, "env": env_start,
        "load_avg_1m_end": common.environment()["load_avg_1m"],
        "workload": {k: getattr(args, k) for k in (
            "dp", "num_tenants", "requests_per_tenant", "prefix_len", "question_len",
            "output_len", "concurrency", "max_total_tokens", "balance_threshold", "seed")},
        "repeats": args.repeats, "results": summary, "hit_rate_ratio": hit_ratio,
        "throughput_ratio": speedup, "outputs_identical": same,
        "targets": {"hit_rate_ratio": 1.5, "throughput_ratio": 1.0},
    }


if __name__ == "__main__":
    main()
