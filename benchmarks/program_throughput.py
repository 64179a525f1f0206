"""SGL program throughput: sglc vs the same model calls made one by one with transformers.

Two programs on the engine benchmark's random-weight ~40M Llama (fp32, CPU), with the
embedded default model's tokenizer so that SGL text prompts have token ids:

- few-shot: a 5-shot prefix, then `parallel for` over 64 questions, one 16-token answer each;
- tree of thought: `fork 3`, each branch forks 3 again (depth 2), then a `select` over the
  3 first-level thoughts; run for 4 problems with `.batch`.

Systems, interleaved per repeat (medians quoted):
- `sglc`: the compiled program on `sglc.Engine` (fresh engine per run: cold cache);
- `sglc, no prefix-sharing pass`: the same, compiled without the `prefix_sharing` pass;
- `transformers sequential`: the model calls the sglc run made (its trace: the same prompt
  texts and output lengths), issued one at a time, as a Python script calling
  `transformers.generate` (and one forward pass per `select` option) would.

Reports wall time, ratios, and the prompt-cache hit rate (cached prompt tokens / prompt
tokens over all model calls, from the trace). Gens use `ignore_eos` so every system
generates the same number of tokens.
Run `python benchmarks/program_throughput.py --help` for the options.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the script runs from any directory)

NAME = "program_throughput"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
WORDS = ("river", "stone", "green", "market", "seven", "winter", "garden", "silver", "train",
         "paper", "island", "yellow", "forest", "window", "music", "bridge", "candle", "north")

TOT_SOURCE = '''
fn think(problem: str) -> str:
    system "Think step by step about the problem."
    user "Problem: {problem}"
    fork 3 as first:
        assistant:
            "Thought: " gen step(max_tokens=STEP_TOKENS, ignore_eos=True, temperature=0.8)
            fork 3 as second:
                "\\nNext: " gen more(max_tokens=STEP_TOKENS, ignore_eos=True, temperature=0.8)
    user "Which thought is best?"
    assistant: "Thought " select pick in ["1", "2", "3"]
    return pick
'''


def few_shot_source(rng: random.Random, num_shots: int, shot_words: int, answer_tokens: int) -> str:
    """A program whose 5 worked examples are literal text (a static prefix the pass sees)."""
    def sentence(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n))

    shots = "\\n".join(f"Q: {sentence(shot_words)}?\\nA: {sentence(shot_words // 2)}."
                       for _ in range(num_shots))
    return f'''
fn answer_all(questions: list[str]) -> list[str]:
    system "Answer each question like the examples.\\n{shots}"
    let answers = parallel for q in questions:
        user "Q: {{q}}"
        assistant: gen a(max_tokens={answer_tokens}, ignore_eos=True)
        a
    return answers
'''


def model_with_tokenizer(path: Path) -> Path:
    """The benchmark model's directory plus the default model's tokenizer files."""
    from sglc.runtime.engine import default_model_path

    target = path.with_name(path.name + "-sgl")
    if not (target / "tokenizer.json").is_file():
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(path, tmp)
        for name in TOKENIZER_FILES:
            shutil.copy(default_model_path() / name, tmp / name)
        shutil.rmtree(target, ignore_errors=True)
        tmp.replace(target)
    return target


def run_sglc(path: Path, source: str, fn: str, calls: list[Any], skip: tuple[str, ...],
             options: dict) -> dict:
    """One cold run of `fn` over `calls` (batched); the trace comes back for the baseline."""
    import sglc
    from sglc.runtime.executor.trace import Trace

    prog = sglc.compile(source, skip_passes=skip)
    engine = sglc.Engine(path, **options)
    trace = Trace()
    try:
        with common.timed() as t:
            prog.batch(fn, calls, runtime=sglc.Runtime(engine=engine), trace=trace)
        stats = engine.stats()
    finally:
        engine.shutdown()
    # prefetch records are cache fills, not model calls of the program
    model_calls = [c for c in trace.to_json()["calls"] if c["kind"] in ("gen", "select")]
    prompt_tokens = sum(c["prompt_tokens"] for c in model_calls)
    cached_tokens = sum(c.get("cached_tokens", 0) for c in model_calls)
    return {
        "seconds": t.seconds,
        "num_calls": len(model_calls),
        "prompt_tokens": prompt_tokens,
        "cached_tokens": cached_tokens,
        "hit_rate": common.ratio(cached_tokens, prompt_tokens),
        "num_prefill_tokens": stats["num_prefill_tokens"],
        "_calls": model_calls,
    }


def run_transformers(path: Path, calls: list[dict]) -> dict:
    """The traced model calls one at a time: `generate` for gens, forward passes for selects."""
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(path)
    model = LlamaForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    model.generation_config.eos_token_id = None  # ignore_eos, as the program asks
    with common.timed() as t, torch.inference_mode():
        for call in sorted(calls, key=lambda c: c["id"]):
            ids = tok(call["prompt"], add_special_tokens=False, return_tensors="pt").input_ids
            if call["kind"] == "gen":
                model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                               max_new_tokens=call["completion_tokens"], do_sample=True,
                               temperature=0.8, pad_token_id=0)
            else:
                for option in call["options"]:
                    opt = tok(option, add_special_tokens=False, return_tensors="pt").input_ids
                    full = torch.cat([ids, opt], dim=1)
                    torch.log_softmax(model(full).logits[0, ids.shape[1] - 1 : -1], dim=-1)
    return {"seconds": t.seconds, "num_calls": len(calls)}


def workloads(args: argparse.Namespace) -> dict[str, tuple[str, str, list[Any]]]:
    rng = random.Random(args.seed)
    questions = [" ".join(rng.choice(WORDS) for _ in range(8)) + "?"
                 for _ in range(args.num_questions)]
    few = few_shot_source(rng, 5, args.shot_words, args.answer_tokens)
    tot = TOT_SOURCE.replace("STEP_TOKENS", str(args.step_tokens))
    problems = [f"combine {rng.choice(WORDS)} and {rng.choice(WORDS)}"
                for _ in range(args.num_problems)]
    return {
        "few-shot": (few, "answer_all", [(questions,)]),
        "tree-of-thought": (tot, "think", [(p,) for p in problems]),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(p, repeats=3)
    p.add_argument("--num-questions", type=int, default=64)
    p.add_argument("--shot-words", type=int, default=40, help="words per few-shot question")
    p.add_argument("--answer-tokens", type=int, default=16)
    p.add_argument("--num-problems", type=int, default=4)
    p.add_argument("--step-tokens", type=int, default=24)
    p.add_argument("--max-total-tokens", type=int, default=60000)
    args = p.parse_args(argv)
    if args.quick:
        args.num_questions, args.shot_words, args.answer_tokens = 8, 10, 4
        args.num_problems, args.step_tokens, args.repeats = 1, 4, 1
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    env_start, spec, base_path = common.start(args.threads)
    path = model_with_tokenizer(base_path)
    options = {"dtype": "float32", "max_total_tokens": args.max_total_tokens, "seed": args.seed}
    print(f"model: {spec.name} + the default model's tokenizer, fp32, CPU, "
          f"{args.threads} torch threads")
    report: dict[str, Any] = {"benchmark": NAME, "env": env_start, "model": spec.name,
                              "args": vars(args) | {"out": str(args.out)}, "workloads": {}}
    for name, (source, fn, calls) in workloads(args).items():
        print(f"\n== {name} ==")
        report["workloads"][name] = measure(path, source, fn, calls, options, args.repeats)
    report["load_avg_1m_end"] = common.environment()["load_avg_1m"]
    out = common.write_json(NAME, report, args.out)
    print(f"\nwrote {out}")
    return report


def measure(path: Path, source: str, fn: str, calls: list[Any], options: dict,
            repeats: int) -> dict:
    traced: list[dict] = []

    def sglc_run(skip: tuple[str, ...]):
        def go(rep: int) -> dict:
            result = run_sglc(path, source, fn, calls, skip, options)
            if not skip:
                traced[:] = result["_calls"]
            return result
        return go

    common.run_in_thread(lambda: run_sglc(path, source, fn, calls[:1], (), options))  # warm-up
    systems = {"sglc": sglc_run(()), "sglc, no prefix-sharing pass": sglc_run(("prefix_sharing",))}
    results = common.interleave(systems, repeats)
    baseline = common.interleave(
        {"transformers sequential": lambda rep: run_transformers(path, traced)}, repeats)
    results.update(baseline)
    return summarize(results)


def summarize(results: dict[str, list[dict]]) -> dict:
    summary = {}
    for name, runs in results.items():
        first = runs[0]
        summary[name] = {
            "median_seconds": common.median([r["seconds"] for r in runs]),
            "num_calls": first["num_calls"],
            "hit_rate": first.get("hit_rate"),
            "num_prefill_tokens": first.get("num_prefill_tokens"),
            "runs": [{k: v for k, v in r.items() if not k.startswith("_")} for r in runs],
        }
    sglc_s = summary["sglc"]["median_seconds"]
    rows = [[name, s["num_calls"], s["num_prefill_tokens"], s["hit_rate"], s["median_seconds"],
             common.ratio(s["median_seconds"], sglc_s)] for name, s in summary.items()]
    print(common.format_table(
        ["system", "model calls", "prefill tok", "cache hit rate", "wall s", "time / sglc"], rows))
    speedup = common.ratio(summary["transformers sequential"]["median_seconds"], sglc_s)
    print(f"sglc is {speedup:.2f}x the sequential transformers baseline (target >= 5x); "
          f"hit rate {summary['sglc']['hit_rate']:.1%}")
    return {"results": summary, "speedup_vs_sequential": speedup,
            "speedup_vs_no_prefix_pass": common.ratio(
                summary["sglc, no prefix-sharing pass"]["median_seconds"], sglc_s)}


if __name__ == "__main__":
    main()
