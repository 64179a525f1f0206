"""KV eviction policies (h2o, window) vs exact attention on the shipped default model.

R chat prompts (few-shot style, a few hundred tokens), greedy, `ignore_eos`, long outputs.
For exact attention and each policy at each budget: KV memory per request (peak KV slots
held by running requests / requests running then, radix cache off so that only requests
hold KV), wall time and output tokens/s of one `generate` call over all prompts, and the
agreement with exact attention: the share of output tokens equal to exact's at the same
position, the mean length of the common prefix, and a likelihood proxy, the mean logprob
per token of the policy's output under exact attention (`Engine.score`; exact's own output
scores highest, since it is greedy). Run `python benchmarks/kv_policies.py --help`.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the script runs from any directory)

NAME = "kv_policies"
TOPICS = ["the moon", "a red bicycle", "prime numbers", "a quiet library", "the ocean",
          "a chess game", "bread", "a mountain village", "rain", "a robot", "tea", "winter"]


def prompts(args: argparse.Namespace, tokenizer) -> list[list[int]]:
    """Few-shot chat prompts: earlier turns about other topics, then a question."""
    rng = random.Random(args.seed)
    out = []
    for _ in range(args.num_requests):
        turns = []
        for topic in rng.sample(TOPICS, args.turns):
            turns.append({"role": "user", "content": f"Tell me something about {topic}."})
            turns.append({"role": "assistant", "content": f"Here is a fact about {topic}: "
                          + " ".join(rng.sample(TOPICS, 4)) + "."})
        turns.append({"role": "user", "content": f"Now write a long story about "
                      f"{rng.choice(TOPICS)}."})
        text = tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=False)
        out.append(tokenizer.encode(text, add_special_tokens=False))
    return out


def run(prompt_ids: list[list[int]], args, options: dict) -> dict:
    import sglc

    engine = sglc.Engine(dtype=args.dtype, device=args.device,
                         max_total_tokens=args.max_total_tokens,
                         disable_radix_cache=True, **options)
    peak = {"per_request": 0.0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.01):
            stats = engine.stats()
            if stats["num_running"]:
                used = stats["total_slots"] - stats["free_slots"]
                peak["per_request"] = max(peak["per_request"], used / stats["num_running"])

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        sampler.start()
        with common.timed() as t:
            outs = engine.generate(prompt_ids, common.greedy_params(args.output_len))
        stop.set()
        sampler.join()
        evicted = engine.stats()["num_evicted_tokens"]
        slot_bytes = engine.core.runner.kv_pool.bytes_per_slot(
            num_layers=engine.loaded.config.num_layers,
            num_kv_heads=engine.loaded.config.num_kv_heads,
            head_dim=engine.loaded.config.head_dim, dtype=engine.core.runner.kv_pool.dtype)
    finally:
        stop.set()
        engine.shutdown()
    return {"seconds": t.seconds, "output_tokens": sum(len(o.token_ids) for o in outs),
            "peak_kv_tokens_per_request": peak["per_request"],
            "peak_kv_kib_per_request": peak["per_request"] * slot_bytes / 1024,
            "evicted_tokens": evicted, "_outputs": [o.token_ids for o in outs]}


def agreement(prompt_ids, outputs, exact, scorer) -> dict:
    same = total = prefix = 0
    logprobs = []
    for prompt, got, want in zip(prompt_ids, outputs, exact, strict=True):
        same += sum(a == b for a, b in zip(got, want, strict=False))
        total += len(want)
        prefix += next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b),
                       min(len(got), len(want)))
        logprobs.append(scorer.score(prompt, [got])[0].normalized)
    return {"token_agreement": same / total, "mean_common_prefix": prefix / len(exact),
            "mean_logprob_under_exact": common.median(logprobs)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(p, repeats=1)
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--dtype", default="float32", help="float32 (default), bfloat16, ...")
    p.add_argument("--num-requests", type=int, default=16)
    p.add_argument("--turns", type=int, default=4, help="few-shot turns before the question")
    p.add_argument("--output-len", type=int, default=256)
    p.add_argument("--budgets", type=int, nargs="+", default=[32, 64, 128])
    p.add_argument("--policies", nargs="+", default=["h2o", "window"])
    p.add_argument("--max-total-tokens", type=int, default=16384)
    args = p.parse_args(argv)
    if args.quick:
        args.num_requests, args.turns, args.output_len, args.budgets = 3, 1, 24, [16]
    return args


def main(argv: list[str] | None = None) -> dict:
    import sglc

    args = parse_args(argv)
    common.set_threads(args.threads)
    env_start = common.environment()
    with sglc.Engine(dtype=args.dtype, device=args.device,
                     max_total_tokens=args.max_total_tokens) as scorer:
        prompt_ids = prompts(args, scorer.tokenizer)
        print(f"default model, fp32, CPU; {len(prompt_ids)} prompts of "
              f"{min(map(len, prompt_ids))}-{max(map(len, prompt_ids))} tokens, "
              f"{args.output_len} output tokens each, seed {args.seed}")
        configs = {"exact": {}} | {
            f"{policy} {budget}": {"kv_policy": policy, "kv_budget": budget}
            for policy in args.policies for budget in args.budgets}
        systems = {name: (lambda rep, o=o: run(prompt_ids, args, o))
                   for name, o in configs.items()}
        results = common.interleave(systems, args.repeats)
        exact = results["exact"][0]["_outputs"]
        rows, summary = [], {}
        for name, runs in results.items():
            seconds = common.median([r["seconds"] for r in runs])
            first = runs[0]
            agree = agreement(prompt_ids, first["_outputs"], exact, scorer)
            summary[name] = {"median_seconds": seconds,
                             "tokens_per_s": first["output_tokens"] / seconds,
                             **{k: v for k, v in first.items() if not k.startswith("_")},
                             **agree}
            rows.append([name, first["peak_kv_tokens_per_request"],
                         first["peak_kv_kib_per_request"], seconds,
                         summary[name]["tokens_per_s"], agree["token_agreement"],
                         agree["mean_common_prefix"], agree["mean_logprob_under_exact"]])
    print(f"\n== {NAME}: {args.repeats} repeat(s), median wall time ==")
    print(common.format_table(["config", "KV tok/req", "KV KiB/req", "wall s", "out tok/s",
                               "agreement", "common prefix", "logprob/tok"], rows))
    return common.save_report(NAME, env_start, args, "sglc default model", results=summary)


if __name__ == "__main__":
    main()
