"""sglc against llama.cpp on CPU, the same weights on both sides.

The model (the shipped default model, or `--model 40m`: the engine benchmarks' random-weight
~40M Llama) is written as GGUF f32 and q8_0 with llama.cpp's `gguf` library
(`llamacpp_side.py`) and run through llama-cpp-python; sglc runs the Hugging Face directory
in float32 and with int8 / int4 weights. Two workloads, greedy, the same token ids on both
sides:

- single stream: one prompt, `--output-len` tokens (batch-1 decode);
- batch: `--num-requests` requests of mixed prompt and output lengths submitted at once
  (llama.cpp: its continuous batching, one sequence per request in a unified KV cache).

Every system runs once per repeat, interleaved, in this process; medians are quoted with the
ratios sglc int8 / llama.cpp q8_0 and sglc fp32 / llama.cpp f32. A sanity check compares
the single-stream greedy tokens of sglc fp32 and llama.cpp f32 (the conversion is right if
they agree, up to float rounding on near-ties).

llama-cpp-python and gguf are optional (`pip install llama-cpp-python gguf`; the first builds
llama.cpp from source): without them the script says so and exits 0.

    python benchmarks/cpu_vs_llamacpp.py [--model default|40m] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the script runs from any directory)
import llamacpp_side  # noqa: E402

NAME = "cpu_vs_llamacpp"
SGLC_SYSTEMS = {"sglc fp32": None, "sglc int8": "int8", "sglc int4": "int4"}
LLAMA_SYSTEMS = {"llama.cpp f32": "f32", "llama.cpp q8_0": "q8_0"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_args(parser, repeats=3)
    parser.set_defaults(threads=1)
    parser.add_argument("--model", choices=("default", "40m"), default="default")
    parser.add_argument("--prompt-len", type=int, default=32, help="single stream prompt")
    parser.add_argument("--output-len", type=int, default=128, help="single stream output")
    parser.add_argument("--num-requests", type=int, default=64)
    parser.add_argument("--batch-prompt-lens", type=int, nargs=2, default=(16, 128),
                        metavar=("MIN", "MAX"))
    parser.add_argument("--batch-output-lens", type=int, nargs=2, default=(32, 128),
                        metavar=("MIN", "MAX"))
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.output_len, args.num_requests = 1, 16, 8
        args.batch_output_lens = (4, 16)
    return args


def model_dir(which: str) -> Path:
    if which == "default":
        from sglc import default_model_path

        return default_model_path()
    return common.model_dir(common.ModelSpec())


def workload(args: argparse.Namespace, vocab_size: int) -> dict:
    rng = random.Random(args.seed)
    single = common.random_prompts(rng, [args.prompt_len], vocab_size)[0]
    lens = [rng.randint(*args.batch_prompt_lens) for _ in range(args.num_requests)]
    return {"single": single, "batch": common.random_prompts(rng, lens, vocab_size),
            "batch_outputs": [rng.randint(*args.batch_output_lens)
                              for _ in range(args.num_requests)]}


def sglc_system(path: Path, scheme: str | None, work: dict, args: argparse.Namespace):
    import sglc

    def run(_rep: int) -> dict:
        with sglc.Engine(path, max_total_tokens=args.num_requests * 320, quantization=scheme,
                         kernel_backend="cpu") as engine:
            engine.generate([work["single"]], common.greedy_params(4))  # warm up
            with common.timed() as single:
                one = engine.generate([work["single"]], common.greedy_params(args.output_len))
            params = [common.greedy_params(n) for n in work["batch_outputs"]]
            with common.timed() as batch:
                outs = engine.generate(work["batch"], params)
        return _measured(one[0].token_ids, single.seconds,
                         sum(len(o.token_ids) for o in outs), batch.seconds)

    return run


def llama_system(gguf_path: Path, work: dict, args: argparse.Namespace):
    def run(_rep: int) -> dict:
        longest = max(len(p) for p in work["batch"]) + max(work["batch_outputs"])
        runner = llamacpp_side.LlamaCpp(gguf_path, num_seqs=args.num_requests,
                                        num_ctx=args.num_requests * max(longest, 256),
                                        threads=args.threads)
        try:
            runner.generate([work["single"]], [4])  # warm up
            with common.timed() as single:
                one = runner.generate([work["single"]], [args.output_len])[0]
            with common.timed() as batch:
                outs = runner.generate(work["batch"], work["batch_outputs"])
        finally:
            runner.close()
        return _measured(one, single.seconds, sum(len(o) for o in outs), batch.seconds)

    return run


def _measured(single_ids: list[int], single_s: float, batch_tokens: int,
              batch_s: float) -> dict:
    return {"batch1_tokens_per_s": len(single_ids) / single_s,
            "batch_tokens_per_s": batch_tokens / batch_s, "single_ids": list(single_ids)}


def agreement(a: list[int], b: list[int]) -> int:
    """Length of the common prefix of two greedy outputs."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def main(argv: list[str] | None = None) -> dict | None:
    args = parse_args(argv)
    absent = llamacpp_side.missing()
    if absent:
        print(f"{NAME}: skipped: {', '.join(absent)} not installed (optional benchmark "
              f"dependencies: pip install {' '.join(absent)})")
        return None
    env_start = common.begin(args.threads)
    path = model_dir(args.model)
    vocab_size = json.loads((path / "config.json").read_text())["vocab_size"]
    work = workload(args, vocab_size)
    ggufs = {name: llamacpp_side.write_gguf(
        path, common.OUT_DIR / "gguf" / f"{args.model}-{kind}.gguf", kind)
        for name, kind in LLAMA_SYSTEMS.items()}
    systems = {name: sglc_system(path, scheme, work, args)
               for name, scheme in SGLC_SYSTEMS.items()}
    systems |= {name: llama_system(ggufs[name], work, args) for name in LLAMA_SYSTEMS}
    runs = common.interleave(systems, args.repeats)
    results = {}
    for name, measured in runs.items():
        results[name] = {key: common.median([m[key] for m in measured])
                         for key in ("batch1_tokens_per_s", "batch_tokens_per_s")}
        results[name]["single_ids"] = measured[0]["single_ids"]
    pairs = {"sglc int8 / llama.cpp q8_0": ("sglc int8", "llama.cpp q8_0"),
             "sglc int4 / llama.cpp q8_0": ("sglc int4", "llama.cpp q8_0"),
             "sglc fp32 / llama.cpp f32": ("sglc fp32", "llama.cpp f32")}
    ratios = {label: {key: common.ratio(results[a][key], results[b][key])
                      for key in ("batch1_tokens_per_s", "batch_tokens_per_s")}
              for label, (a, b) in pairs.items()}
    same = agreement(results["sglc fp32"]["single_ids"], results["llama.cpp f32"]["single_ids"])
    print(f"\n== {NAME}: {args.model} model, {args.threads} thread(s), {args.repeats} "
          "repeat(s), medians ==")
    print(common.format_table(
        ["system", "tok/s batch 1", f"tok/s {args.num_requests} mixed requests"],
        [[n, r["batch1_tokens_per_s"], r["batch_tokens_per_s"]] for n, r in results.items()]))
    print()
    print(common.format_table(["ratio", "batch 1", "batch"],
                              [[k, v["batch1_tokens_per_s"], v["batch_tokens_per_s"]]
                               for k, v in ratios.items()]))
    print(f"\nsglc fp32 and llama.cpp f32 single-stream greedy tokens agree for the first "
          f"{same} of {args.output_len}")
    return common.save_report(NAME, env_start, args, str(path), f"{NAME}_{args.model}",
                              results=results, ratios=ratios,
                              fp32_greedy_agreement_tokens=same)


if __name__ == "__main__":
    main()
