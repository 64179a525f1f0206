"""Offline throughput: sglc.Engine vs transformers `generate` on the same random-weight Llama.

64 requests (seeded prompt lengths 32-512, output lengths 16-256, greedy, ignore_eos) on CPU
in fp32. sglc gets all requests at once (continuous batching); transformers runs them in
left-padded batches of 1, 16 and 64 in the order given, and its best batch size is quoted.
Run `python benchmarks/engine_throughput.py --help` for the options.
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the script runs from any directory)

NAME = "engine_throughput"


@dataclass(frozen=True)
class Workload:
    prompts: list[list[int]]
    output_lens: list[int]

    @property
    def num_requests(self) -> int:
        return len(self.prompts)

    def subset(self, indices: list[int]) -> Workload:
        return Workload([self.prompts[i] for i in indices], [self.output_lens[i] for i in indices])


def make_workload(args: argparse.Namespace, vocab_size: int) -> Workload:
    rng = random.Random(args.seed)
    prompt_lens = [rng.randint(*args.prompt_lens) for _ in range(args.num_requests)]
    output_lens = [rng.randint(*args.output_lens) for _ in range(args.num_requests)]
    return Workload(common.random_prompts(rng, prompt_lens, vocab_size), output_lens)


# -- sglc ------------------------------------------------------------------------------------
def engine_options(args: argparse.Namespace) -> dict:
    from sglc.kernels import default_backend

    return dict(
        dtype="float32", max_total_tokens=args.max_total_tokens, policy=args.policy,
        chunked_prefill_size=args.chunked_prefill_size, max_running_requests=256,
        kernel_backend=args.kernel_backend or default_backend("cpu"),  # as resolved
    )


def run_sglc(path: Path, work: Workload, options: dict) -> dict:
    """One cold run: a fresh engine (so the prefix cache starts empty), timed generate only."""
    import sglc

    engine = sglc.Engine(path, **options)
    try:
        params = [common.greedy_params(n) for n in work.output_lens]
        with common.timed() as t:
            outs = engine.generate(work.prompts, params)
        stats = engine.stats()
    finally:
        engine.shutdown()
    tokens = [list(o.token_ids) for o in outs]
    useful = sum(min(len(got), want) for got, want in zip(tokens, work.output_lens, strict=True))
    return {
        "seconds": t.seconds,
        "output_tokens": useful,
        "tokens_per_s": useful / t.seconds,
        "num_prefill_tokens": stats["num_prefill_tokens"],
        "num_extend_batches": stats["num_extend_batches"],
        "num_decode_batches": stats["num_decode_batches"],
        "num_retractions": stats.get("num_retractions"),
        # usage, not stats()["cache"]: the cache's own counters also count the re-match
        # that follows each insert, so they overstate hits
        "cached_prompt_tokens": sum(o.usage.cached_tokens for o in outs),
        "_outputs": tokens,
    }


# -- transformers ----------------------------------------------------------------------------
def load_hf(path: Path):
    import torch
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    # NOTE: generate() fills None kwargs from generation_config, so EOS is switched off here;
    # with it off, every row runs to max_new_tokens, as ignore_eos does in sglc.
    model.generation_config.eos_token_id = None
    return model


def hf_generate_batch(model, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
    """Greedy generate for one left-padded batch; returns each row's generated tokens."""
    import torch

    width = max(len(p) for p in prompts)
    ids = torch.zeros(len(prompts), width, dtype=torch.int64)  # pad id 0
    mask = torch.zeros(len(prompts), width, dtype=torch.int64)
    for row, p in enumerate(prompts):
        ids[row, width - len(p):] = torch.tensor(p)
        mask[row, width - len(p):] = 1
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
            do_sample=False, pad_token_id=0,
        )
    return out[:, width:].tolist()


def run_hf(model, work: Workload, batch_size: int) -> dict:
    """Batches in the order given; each runs to its longest requested output and only each
    request's own requested tokens count as useful output."""
    outputs: list[list[int]] = []
    per_batch_s: list[float] = []
    generated = 0
    for start in range(0, work.num_requests, batch_size):
        prompts = work.prompts[start : start + batch_size]
        lens = work.output_lens[start : start + batch_size]
        with common.timed() as t:
            rows = hf_generate_batch(model, prompts, max(lens))
        per_batch_s.append(t.seconds)
        generated += len(rows) * max(lens)
        outputs += [row[:n] for row, n in zip(rows, lens, strict=True)]
    seconds = sum(per_batch_s)
    useful = sum(work.output_lens)
    return {
        "seconds": seconds,
        "output_tokens": useful,
        "tokens_per_s": useful / seconds,
        "generated_tokens": generated,
        "_per_batch_s": per_batch_s,
        "_outputs": outputs,
    }


def stratified_subsample(work: Workload, num: int) -> list[int]:
    """`num` request indices spread evenly over the output-length order (short to long), so
    a subsample covers the range of decode lengths that dominate batch-1 time."""
    if num >= work.num_requests:
        return list(range(work.num_requests))
    order = sorted(range(work.num_requests), key=lambda i: (work.output_lens[i], i))
    if num == 1:
        return [order[len(order) // 2]]
    return sorted({order[round(k * (len(order) - 1) / (num - 1))] for k in range(num)})


def extrapolate_batch1(work: Workload, picks: list[int], per_request_s: list[float]) -> float:
    """Estimated batch-1 time for all requests: least-squares fit of
    seconds ~ a + b * prompt_len + c * output_len over the timed subsample, summed over all
    requests (falls back to scaling by output tokens when the subsample is too small)."""
    import numpy as np

    sub = work.subset(picks)
    if len(picks) == work.num_requests:
        return sum(per_request_s)
    if len(picks) < 6:
        return sum(per_request_s) * sum(work.output_lens) / sum(sub.output_lens)
    x = np.array([[1.0, len(p), n] for p, n in zip(sub.prompts, sub.output_lens, strict=True)])
    coef, *_ = np.linalg.lstsq(x, np.array(per_request_s), rcond=None)
    full = np.array([[1.0, len(p), n] for p, n in zip(work.prompts, work.output_lens, strict=True)])
    return float(np.clip(full @ coef, 0, None).sum())


def run_hf_batch1(model, work: Workload, picks: list[int]) -> dict:
    sub = work.subset(picks)
    measured = run_hf(model, sub, 1)
    if len(picks) == work.num_requests:
        return measured
    est = extrapolate_batch1(work, picks, measured["_per_batch_s"])
    measured.update(
        measured_seconds=measured["seconds"], measured_output_tokens=measured["output_tokens"],
        measured_tokens_per_s=measured["tokens_per_s"],
        seconds=est, output_tokens=sum(work.output_lens), generated_tokens=sum(work.output_lens),
        tokens_per_s=sum(work.output_lens) / est, extrapolated=True,
    )
    return measured


# -- correctness -----------------------------------------------------------------------------
def compare(sglc_out: list[list[int]], hf_out: dict[int, list[int]]) -> dict:
    """Requests whose sglc tokens differ from HF's; with the first differing position."""
    mismatches = []
    for i, ref in sorted(hf_out.items()):
        got = sglc_out[i]
        if got != ref:
            first = next((k for k, (a, b) in enumerate(zip(got, ref, strict=False)) if a != b),
                         min(len(got), len(ref)))
            mismatches.append({"request": i, "first_diff": first, "len": len(ref)})
    return {"compared": len(hf_out), "mismatches": len(mismatches), "details": mismatches}


# -- main ------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(p, repeats=3)
    p.add_argument("--num-requests", type=int, default=64)
    p.add_argument("--prompt-lens", type=int, nargs=2, default=(32, 512), metavar=("MIN", "MAX"))
    p.add_argument("--output-lens", type=int, nargs=2, default=(16, 256), metavar=("MIN", "MAX"))
    p.add_argument("--hf-batch-sizes", type=str, default="1,16,64",
                   help="comma-separated transformers batch sizes (default 1,16,64)")
    p.add_argument("--hf-max-requests", type=int, default=8,
                   help="batch 1 times only this many requests (spread over output lengths) "
                        "and extrapolates to all; 0 = all (default 8)")
    p.add_argument("--no-hf", action="store_true", help="run sglc only (e.g. under a profiler)")
    p.add_argument("--policy", default="lpm")
    p.add_argument("--kernel-backend", "--attention-backend", choices=["torch", "cpu"],
                   default=None,
                   help="sglc kernel backend (default: the engine's, 'cpu' where it builds)")
    p.add_argument("--chunked-prefill-size", type=int, default=2048)
    p.add_argument("--max-total-tokens", type=int, default=65536)
    args = p.parse_args(argv)
    if args.quick:
        args.num_requests, args.prompt_lens, args.output_lens = 8, (16, 64), (8, 24)
        args.repeats, args.hf_max_requests = 1, 4
        args.hf_batch_sizes = "1,8"
    args.hf_batch_sizes = sorted({min(int(b), args.num_requests)
                                  for b in args.hf_batch_sizes.split(",") if b.strip()})
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    env_start, spec, path = common.start(args.threads)
    work = make_workload(args, spec.vocab_size)
    options = engine_options(args)
    hf = None if args.no_hf else load_hf(path)
    num_params = common.count_params(hf) if hf is not None else None
    picks = stratified_subsample(work, args.hf_max_requests or work.num_requests)

    print(f"model: {spec.name} ({num_params or '?'} params), fp32, CPU, "
          f"{args.threads} torch threads; model dir {path}")
    print(f"workload: {work.num_requests} requests, prompt lens {args.prompt_lens}, "
          f"output lens {args.output_lens}, seed {args.seed}; "
          f"{sum(map(len, work.prompts))} prompt / {sum(work.output_lens)} output tokens")
    print(f"sglc options: {options}")

    # warm-up (one-time thread-pool and allocator costs), not measured
    warm = work.subset([0]) if work.num_requests else work
    warm = Workload([p[:16] for p in warm.prompts], [4])
    common.run_in_thread(lambda: run_sglc(path, warm, options))
    if hf is not None:
        common.run_in_thread(lambda: run_hf(hf, warm, 1))

    systems = {"sglc": lambda rep: run_sglc(path, work, options)}
    if hf is not None:
        for b in args.hf_batch_sizes:
            if b == 1:
                systems["hf b=1"] = lambda rep: run_hf_batch1(hf, work, picks)
            else:
                systems[f"hf b={b}"] = lambda rep, b=b: run_hf(hf, work, b)
    results = common.interleave(systems, args.repeats)
    report = summarize(args, env_start, spec, num_params, work, options, picks, results)
    out = common.write_json(NAME, report, args.out)
    print(f"\nwrote {out}")
    return report


def summarize(args, env_start, spec, num_params, work, options, picks, results) -> dict:
    def med(name: str, key: str):
        vals = [r[key] for r in results[name] if r.get(key) is not None]
        return common.median(vals) if vals else None

    rows, summary = [], {}
    for name, runs in results.items():
        summary[name] = {
            "median_seconds": med(name, "seconds"),
            "median_tokens_per_s": med(name, "tokens_per_s"),
            "output_tokens": runs[0]["output_tokens"],
            "generated_tokens": runs[0].get("generated_tokens", runs[0]["output_tokens"]),
            "extrapolated": bool(runs[0].get("extrapolated")),
            "runs": [{k: v for k, v in r.items() if not k.startswith("_")} for r in runs],
        }
        note = ""
        if name == "sglc":
            r = runs[0]
            note = (f"{r['num_extend_batches']} extend / {r['num_decode_batches']} decode "
                    f"batches, {r['num_prefill_tokens']} prefill tok")
        elif summary[name]["extrapolated"]:
            note = (f"extrapolated from {len(picks)}/{work.num_requests} requests "
                    f"(measured {med(name, 'measured_tokens_per_s'):.1f} tok/s on them)")
        rows.append([name, summary[name]["median_seconds"], summary[name]["output_tokens"],
                     summary[name]["generated_tokens"], summary[name]["median_tokens_per_s"], note])

    hf_names = [n for n in results if n.startswith("hf")]
    best = max(hf_names, key=lambda n: summary[n]["median_tokens_per_s"], default=None)
    speedup = (common.ratio(summary["sglc"]["median_tokens_per_s"],
                            summary[best]["median_tokens_per_s"]) if best else None)
    if best:
        rows.append([f"ratio sglc / {best}",
                     common.ratio(summary[best]["median_seconds"], summary["sglc"]["median_seconds"]),
                     None, None, speedup, "target >= 3x"])

    correctness = {}
    sglc_runs = [r["_outputs"] for r in results["sglc"]]
    correctness["sglc_repeats_identical"] = all(o == sglc_runs[0] for o in sglc_runs)
    for name in hf_names:
        indices = picks if name == "hf b=1" else list(range(work.num_requests))
        correctness[name] = compare(sglc_runs[0], dict(zip(indices, results[name][0]["_outputs"],
                                                            strict=True)))

    print(f"\n== {NAME}: {args.repeats} repeat(s), medians ==")
    print(common.format_table(
        ["system", "wall s", "useful out tok", "generated tok", "out tok/s", "notes"], rows))
    print("\nnotes:")
    print("- transformers cannot stop each row at its own length inside a batch: each batch "
          "generates up to its longest requested output (EOS off, like ignore_eos); only each request's own requested tokens count as useful output "
          "('generated tok' includes the waste).")
    print("- transformers: left-padded batches in the given order, pad_token_id=0, attention_mask "
          "passed, default attention implementation; sglc: all requests submitted at once, "
          "fresh engine (cold prefix cache) per repeat, engine construction not timed; both "
          "run off the main thread (see common.run_in_thread).")
    if "hf b=1" in results and len(picks) < work.num_requests:
        print(f"- hf b=1 timed {len(picks)} of {work.num_requests} requests (spread over output "
              "lengths); its wall time and tok/s are extrapolated to all requests with a "
              "least-squares fit time ~ a + b*prompt_len + c*output_len.")
    if best:
        print(f"- best transformers batch size: {best.split('=')[1]}; "
              f"sglc speedup {speedup:.2f}x (target >= 3x)")
    print("\ncorrectness (greedy sglc tokens vs transformers, first repeat):")
    print(f"  sglc identical across repeats: {correctness['sglc_repeats_identical']}")
    for name in hf_names:
        c = correctness[name]
        print(f"  vs {name}: {c['mismatches']} of {c['compared']} requests differ"
              + (f" (first diffs at {[d['first_diff'] for d in c['details']][:8]})"
                 if c["mismatches"] else ""))
    if any(correctness[n]["mismatches"] for n in hf_names):
        print("  (fp32 near-ties can flip a greedy pick, esp. against padded batches; "
              "reported, not failed)")

    return {
        "benchmark": NAME,
        "env": env_start,
        "load_avg_1m_end": common.environment()["load_avg_1m"],
        "model": {**asdict(spec), "name": spec.name, "num_params": num_params},
        "workload": {
            "num_requests": work.num_requests, "seed": args.seed,
            "prompt_lens": work.prompts and [len(p) for p in work.prompts],
            "output_lens": work.output_lens,
        },
        "sglc_options": options,
        "repeats": args.repeats,
        "hf_batch1_subsample": picks if "hf b=1" in results else None,
        "results": summary,
        "best_hf": best,
        "speedup_tokens_per_s": speedup,
        "target_speedup": 3.0,
        "correctness": correctness,
    }


if __name__ == "__main__":
    main()
