"""Response cache eviction: LRU vs GDSF vs LEC on a Zipf query trace over two models.

The workload ("On Optimal Caching and Model Multiplexing for Large Model Inference", Zhu et
al. 2023, section 5's setting): `--num-queries` distinct queries, each a chat question with
a fixed model and answer length, asked `--num-requests` times in all, query k with
probability proportional to 1 / k^alpha (Zipf, `--alpha`; ranks shuffled so popularity is
independent of model and length). A query goes to the large model with probability
`--large-share`, else to the small one, and asks for 8, 16, 32 or 64 greedy tokens
(`ignore_eos`). Everything is drawn from `random.Random(--seed)`.

    small   the embedded default model (5.1M parameters)
    large   a random-weight Llama with the default model's tokenizer: hidden 512, 12 layers,
            8/4 heads, intermediate 1408 (built once under benchmarks/out/models/)

Both models' engines share one cache file, so the byte bound is shared, as in the paper's
single cache in front of several models. The cost of a request is the FLOPs estimate the
cache itself uses (`response_cache_cost="flops"`); the table states the models' ratio.

Two parts:
  1. sweep: every distinct query is answered once by its model (real outputs), then the trace
     is replayed through `ResponseCache` (the engine's own cache object: keys, SQLite store,
     policies, codec) for each policy and cache size, sizes as shares of the bytes all
     answers take; a miss costs its request's FLOPs.
  2. end to end: the first `--e2e-requests` requests of the trace, one at a time, through
     two engines with `response_cache=` for each policy at one size: wall time, and the hit
     count, which must equal the replay's on the same prefix (checked).

Run `python benchmarks/response_cache.py` (`--quick` for a smoke run).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the script runs from any directory)

NAME = "response_cache"
POLICIES = ("lru", "gdsf", "lec")
LENGTHS = (8, 16, 32, 64)
TOPICS = ["the moon", "a red bicycle", "prime numbers", "a quiet library", "the ocean",
          "a chess game", "bread", "a mountain village", "rain", "a robot", "tea", "winter"]
LARGE = dict(hidden_size=512, num_hidden_layers=12, num_attention_heads=8,
             num_key_value_heads=4, intermediate_size=1408)


@dataclass(frozen=True)
class Query:
    model: str  # small | large
    prompt: str
    max_new_tokens: int

    @property
    def params(self) -> dict:
        return {"max_new_tokens": self.max_new_tokens, "temperature": 0, "ignore_eos": True}


def large_model_dir() -> Path:
    """The random-weight large model, with the default model's tokenizer files."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from sglc.runtime.engine import default_model_path

    path = common.OUT_DIR / "models" / "response-cache-large-h512-l12"
    if (path / "config.json").is_file() and (path / "tokenizer.json").is_file():
        return path
    small = default_model_path()
    cfg = LlamaConfig(vocab_size=2673, max_position_embeddings=1024, tie_word_embeddings=True,
                      bos_token_id=0, eos_token_id=2, pad_token_id=0, **LARGE)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(path)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(small / name, path / name)
    return path


def workload(args: argparse.Namespace) -> tuple[list[Query], list[int]]:
    """The distinct queries and the trace (indices into them)."""
    rng = random.Random(args.seed)
    queries = [Query("large" if rng.random() < args.large_share else "small",
                     f"Question {k}: tell me about {rng.choice(TOPICS)} and "
                     f"{rng.choice(TOPICS)}.", rng.choice(LENGTHS))
               for k in range(args.num_queries)]
    ranks = list(range(args.num_queries))
    rng.shuffle(ranks)
    weights = [1.0 / (ranks[k] + 1) ** args.alpha for k in range(args.num_queries)]
    trace = rng.choices(range(args.num_queries), weights=weights, k=args.num_requests)
    return queries, trace


def chat_ids(tokenizer, prompt: str) -> list[int]:
    text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                         add_generation_prompt=True, tokenize=False)
    return tokenizer.encode(text, add_special_tokens=False)


def answer_all(engines: dict, queries: list[Query]) -> list:
    """Each distinct query answered once by its model (no cache), batched per model."""
    outputs: list = [None] * len(queries)
    for model, engine in engines.items():
        mine = [k for k, q in enumerate(queries) if q.model == model]
        for length in LENGTHS:
            batch = [k for k in mine if queries[k].max_new_tokens == length]
            if not batch:
                continue
            prompts = [chat_ids(engine.tokenizer, queries[k].prompt) for k in batch]
            for k, out in zip(batch, engine.generate(prompts, queries[batch[0]].params),
                              strict=True):
                outputs[k] = out
    return outputs


def replay(caches: dict, queries: list[Query], keys: list[dict], outputs: list,
           trace: list[int]) -> dict:
    """The trace through the models' ResponseCaches: hits, and the FLOPs of the misses."""
    hits, cost = 0, 0.0
    for k in trace:
        cache = caches[queries[k].model]
        key = keys[k][queries[k].model]
        if cache.lookup(key, "r", 0) is not None:
            hits += 1
            continue
        out = outputs[k]
        cost += cache.flops.request_flops(out.usage.prompt_tokens, len(out.token_ids))
        cache.save(key, [out], 0.0)
    return {"hits": hits, "hit_rate": hits / len(trace), "cost_flops": cost}


def open_caches(engines: dict, path: Path, policy: str, max_bytes: int) -> dict:
    """One ResponseCache per model on one shared file, as the engines would open it."""
    from sglc.runtime.response_cache import ResponseCache

    return {m: ResponseCache(path, e.response_cache.model_id, max_bytes=max_bytes,
                             policy=policy, cost="flops", flops=e.response_cache.flops)
            for m, e in engines.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser, repeats=1)
    parser.add_argument("--num-queries", type=int, default=400)
    parser.add_argument("--num-requests", type=int, default=4000)
    parser.add_argument("--alpha", type=float, default=0.9, help="Zipf exponent (default 0.9)")
    parser.add_argument("--large-share", type=float, default=0.3,
                        help="share of queries sent to the large model (default 0.3)")
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.02, 0.05, 0.1, 0.2, 0.4],
                        help="cache sizes as shares of all answers' bytes")
    parser.add_argument("--e2e-requests", type=int, default=150)
    parser.add_argument("--e2e-size", type=float, default=0.1)
    args = parser.parse_args()
    if args.quick:
        args.num_queries, args.num_requests, args.e2e_requests = 60, 400, 60
    env = common.begin(args.threads)

    import sglc
    from sglc.runtime.response_cache import request_key
    from sglc.runtime.response_cache.codec import encode
    from sglc.runtime.response_cache.store import ROW_OVERHEAD_BYTES

    tmp = Path(tempfile.mkdtemp(prefix="sglc-rc-bench-"))
    paths = {"small": None, "large": large_model_dir()}
    queries, trace = workload(args)

    def make_engines(cache: Path, **options) -> dict:
        return {m: sglc.Engine(p, max_total_tokens=8192, response_cache=str(cache), **options)
                for m, p in paths.items()}

    engines = make_engines(tmp / "probe.sqlite", response_cache_max_bytes=1)
    flops = {m: e.response_cache.flops for m, e in engines.items()}
    probe = {m: f.request_flops(32, 32) for m, f in flops.items()}
    cost_ratio = probe["large"] / probe["small"]
    print(f"models: small {flops['small'].num_params:,} params/token, large "
          f"{flops['large'].num_params:,}; FLOPs ratio large/small at 32+32 tokens: "
          f"{cost_ratio:.2f}")
    t0 = time.perf_counter()
    outputs = answer_all(engines, queries)
    print(f"answered {len(queries)} distinct queries in {time.perf_counter() - t0:.1f} s")
    keys, total_bytes = [], 0
    for q, out in zip(queries, outputs, strict=True):
        e = engines[q.model]
        ids = chat_ids(e.tokenizer, q.prompt)
        key = request_key(e.response_cache.model_id, ids, sglc.SamplingParams(**q.params))
        keys.append({q.model: key})
        total_bytes += len(key) + len(encode([out])) + ROW_OVERHEAD_BYTES
    for e in engines.values():
        e.shutdown()
    no_cache = sum(flops[queries[k].model].request_flops(
        outputs[k].usage.prompt_tokens, len(outputs[k].token_ids)) for k in trace)
    distinct = len(set(trace))
    print(f"trace: {len(trace)} requests, {distinct} distinct queries, all answers "
          f"{total_bytes:,} bytes; no cache: {no_cache:.3e} FLOPs; infinite cache: hit rate "
          f"{1 - distinct / len(trace):.3f}")

    sweep = []
    for share in args.sizes:
        for policy in POLICIES:
            caches = open_caches({m: e for m, e in engines.items()}, tmp / f"{policy}-{share}.db",
                                 policy, max(1, int(share * total_bytes)))
            result = replay(caches, queries, keys, outputs, trace)
            sweep.append({"size_share": share, "max_bytes": int(share * total_bytes),
                          "policy": policy, **result, "cost_vs_no_cache": result["cost_flops"]
                          / no_cache})
            for c in caches.values():
                c.close()
    rows = []
    for share in args.sizes:
        got = {r["policy"]: r for r in sweep if r["size_share"] == share}
        rows.append([f"{share:.0%}", *(got[p]["hit_rate"] for p in POLICIES),
                     *(got[p]["cost_vs_no_cache"] for p in POLICIES),
                     got["gdsf"]["cost_flops"] / got["lru"]["cost_flops"],
                     got["lec"]["cost_flops"] / got["lru"]["cost_flops"]])
    print("\nreplay: hit rate, and cost (FLOPs of misses) as a share of no cache")
    print(common.format_table(
        ["cache size", *(f"hit {p}" for p in POLICIES), *(f"cost {p}" for p in POLICIES),
         "gdsf/lru cost", "lec/lru cost"], rows))

    e2e = []
    prefix = trace[:args.e2e_requests]
    max_bytes = max(1, int(args.e2e_size * total_bytes))
    for policy in POLICIES:
        caches = open_caches(engines, tmp / f"check-{policy}.db", policy, max_bytes)
        expected = replay(caches, queries, keys, outputs, prefix)
        engines_e2e = make_engines(tmp / f"e2e-{policy}.db", response_cache_max_bytes=max_bytes,
                                   response_cache_policy=policy)
        start = time.perf_counter()
        hits = 0
        for k in prefix:
            e = engines_e2e[queries[k].model]
            out = e.generate([chat_ids(e.tokenizer, queries[k].prompt)], queries[k].params)[0]
            assert out.token_ids == outputs[k].token_ids, "a cached answer differs"
            hits += out.usage.cached_response
        wall = time.perf_counter() - start
        for e in engines_e2e.values():
            e.shutdown()
        assert hits == expected["hits"], (policy, hits, expected["hits"])
        e2e.append({"policy": policy, "requests": len(prefix), "hits": hits,
                    "wall_s": wall, "cost_flops": expected["cost_flops"]})
    print(f"\nend to end: first {len(prefix)} requests one at a time, cache "
          f"{args.e2e_size:.0%} ({max_bytes:,} bytes); hits equal the replay's")
    print(common.format_table(["policy", "hits", "hit rate", "wall s", "cost FLOPs"],
                              [[r["policy"], r["hits"], r["hits"] / len(prefix), r["wall_s"],
                                f"{r['cost_flops']:.3e}"] for r in e2e]))
    shutil.rmtree(tmp, ignore_errors=True)
    payload = {"args": vars(args), "environment": env, "cost_ratio_large_small": cost_ratio,
               "params_per_token": {m: f.num_params for m, f in flops.items()},
               "total_answer_bytes": total_bytes, "no_cache_flops": no_cache,
               "distinct_in_trace": distinct, "sweep": sweep, "end_to_end": e2e,
               "environment_end": common.environment()}
    print(f"\nwrote {common.write_json(NAME, payload, args.out)}")


if __name__ == "__main__":
    main()
