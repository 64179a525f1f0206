"""Multi-LoRA serving (S-LoRA's shape): one engine serving many adapters in mixed batches vs
one adapter at a time with its weights merged into the model.

R requests, each for one of N adapters (N = 1, 8, 64 by default; random rank-16 PEFT
adapters of q/k/v/o, built once under benchmarks/out/adapters/), greedy, `ignore_eos`.
Systems: `multi-lora` (sglc.Engine with lora_paths: every request in one `generate` call,
adapters segmented in each batch by the shrink/expand ops), `merged` (the same engine
without adapters; for each adapter in turn, W += scaling * B @ A in place, that adapter's
requests in one `generate` call, then the merge undone: what serving without multi-LoRA
support does), and `base` (no adapters at all: the ceiling). Reports wall time and output
tokens/s, and how many requests' outputs differ between multi-lora and merged.
Run `python benchmarks/multi_lora.py --help` for the options.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the script runs from any directory)

NAME = "multi_lora"
MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")


def adapter_dirs(spec: common.ModelSpec, num: int, rank: int) -> dict[str, Path]:
    """`num` random PEFT adapters for the benchmark model, built once."""
    import torch
    from safetensors.torch import save_file

    root = common.OUT_DIR / "adapters" / f"{spec.name}-r{rank}"
    head_dim = spec.hidden_size // spec.num_heads
    out_features = {"q_proj": spec.num_heads * head_dim, "k_proj": spec.num_kv_heads * head_dim,
                    "v_proj": spec.num_kv_heads * head_dim, "o_proj": spec.hidden_size}
    dirs = {}
    for i in range(num):
        path = root / f"a{i}"
        dirs[f"a{i}"] = path
        if (path / "adapter_model.safetensors").is_file():
            continue
        gen = torch.Generator().manual_seed(1000 + i)
        tensors = {}
        for layer in range(spec.num_layers):
            for module in MODULES:
                in_f = spec.num_heads * head_dim if module == "o_proj" else spec.hidden_size
                key = f"base_model.model.model.layers.{layer}.self_attn.{module}"
                tensors[f"{key}.lora_A.weight"] = torch.randn(rank, in_f, generator=gen) \
                    / math.sqrt(in_f)
                tensors[f"{key}.lora_B.weight"] = torch.randn(
                    out_features[module], rank, generator=gen) * 0.05
        path.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(path / "adapter_model.safetensors"))
        (path / "adapter_config.json").write_text(json.dumps({
            "peft_type": "LORA", "r": rank, "lora_alpha": 2 * rank,
            "target_modules": list(MODULES), "bias": "none"}))
    return dirs


def workload(args: argparse.Namespace, vocab_size: int, num_adapters: int):
    rng = random.Random(args.seed)
    lengths = [rng.randint(args.min_prompt, args.max_prompt) for _ in range(args.num_requests)]
    prompts = common.random_prompts(rng, lengths, vocab_size)
    names = [f"a{i % num_adapters}" for i in range(args.num_requests)]
    rng.shuffle(names)
    return prompts, names


def run_multi(path: Path, dirs: dict, prompts, names, args) -> dict:
    import sglc

    used = {n: str(dirs[n]) for n in set(names)}
    engine = sglc.Engine(path, dtype=args.dtype, device=args.device,
                         max_total_tokens=args.max_total_tokens,
                         lora_paths=used, max_loras_per_batch=len(used))
    try:
        params = [{**common.greedy_params(args.output_len), "lora": n} for n in names]
        with common.timed() as t:
            outs = engine.generate(prompts, params)
    finally:
        engine.shutdown()
    return {"seconds": t.seconds, "output_tokens": sum(len(o.token_ids) for o in outs),
            "_outputs": [o.token_ids for o in outs]}


def run_merged(path: Path, dirs: dict, prompts, names, args) -> dict:
    """One adapter's requests at a time, its weights merged into the engine's model."""
    import sglc

    engine = sglc.Engine(path, dtype=args.dtype, device=args.device,
                         max_total_tokens=args.max_total_tokens)
    outputs: list[list[int] | None] = [None] * len(prompts)
    try:
        with common.timed() as t:
            for name in sorted(set(names)):
                idx = [i for i, n in enumerate(names) if n == name]
                deltas = _deltas(engine, dirs[name])
                _apply(deltas, +1)
                outs = engine.generate([prompts[i] for i in idx],
                                       common.greedy_params(args.output_len))
                _apply(deltas, -1)
                for i, out in zip(idx, outs, strict=True):
                    outputs[i] = out.token_ids
    finally:
        engine.shutdown()
    return {"seconds": t.seconds, "output_tokens": sum(len(o) for o in outputs),
            "_outputs": outputs}


def _deltas(engine, adapter_dir: Path):
    """(weight, row slice, scaling * B @ A) for each adapted projection of the fused model."""
    from safetensors.torch import load_file

    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    mcfg = engine.loaded.config
    rows = {"q_proj": (0, mcfg.q_size), "k_proj": (mcfg.q_size, mcfg.q_size + mcfg.kv_size),
            "v_proj": (mcfg.q_size + mcfg.kv_size, mcfg.q_size + 2 * mcfg.kv_size)}
    deltas = []
    for key, a in tensors.items():
        if ".lora_A." not in key:
            continue
        b = tensors[key.replace(".lora_A.", ".lora_B.")]
        layer = int(key.split(".layers.")[1].split(".")[0])
        module = key.split(".self_attn.")[1].split(".")[0]
        attn = engine.loaded.model.model.layers[layer].self_attn
        delta = (cfg["lora_alpha"] / a.shape[0]) * (b @ a)
        if module == "o_proj":
            deltas.append((attn.o_proj.weight, slice(None), delta))
        else:
            deltas.append((attn.qkv_proj.weight, slice(*rows[module]), delta))
    return deltas


def _apply(deltas, sign: int) -> None:
    import torch

    with torch.no_grad():
        for weight, rows, delta in deltas:
            weight[rows] += sign * delta.to(weight.device, weight.dtype)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(p, repeats=3)
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--dtype", default="float32", help="float32 (default), bfloat16, ...")
    p.add_argument("--num-adapters", type=int, nargs="+", default=[1, 8, 64])
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--num-requests", type=int, default=128)
    p.add_argument("--min-prompt", type=int, default=32)
    p.add_argument("--max-prompt", type=int, default=128)
    p.add_argument("--output-len", type=int, default=32)
    p.add_argument("--max-total-tokens", type=int, default=40000)
    args = p.parse_args(argv)
    if args.quick:
        args.num_adapters, args.num_requests, args.output_len = [1, 4], 8, 4
        args.min_prompt, args.max_prompt, args.repeats = 8, 16, 1
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    env_start, spec, path = common.start(args.threads)
    dirs = adapter_dirs(spec, max(args.num_adapters), args.rank)
    print(f"model: {spec.name}, fp32, CPU, {args.threads} torch threads; adapters rank "
          f"{args.rank} on {', '.join(MODULES)}")
    print(f"workload: {args.num_requests} requests, prompts {args.min_prompt}-"
          f"{args.max_prompt} tokens, {args.output_len} output tokens, seed {args.seed}")
    report: dict = {"benchmark": NAME, "env": env_start, "model": spec.name,
                    "workload": vars(args) | {"out": None}, "results": {}}
    rows = []
    for num in args.num_adapters:
        prompts, names = workload(args, spec.vocab_size, num)
        print(f"\n-- {num} adapter(s) --")
        systems = {
            "multi-lora": lambda rep, p=prompts, n=names: run_multi(path, dirs, p, n, args),
            "merged": lambda rep, p=prompts, n=names: run_merged(path, dirs, p, n, args),
            "base": lambda rep, p=prompts: run_base(path, p, args),
        }
        results = common.interleave(systems, args.repeats)
        summary = {}
        for system, runs in results.items():
            seconds = common.median([r["seconds"] for r in runs])
            summary[system] = {"median_seconds": seconds,
                               "tokens_per_s": runs[0]["output_tokens"] / seconds,
                               "runs": [{k: v for k, v in r.items() if not k.startswith("_")}
                                        for r in runs]}
            rows.append([f"{num} adapters: {system}", seconds, summary[system]["tokens_per_s"]])
        multi = results["multi-lora"][0]["_outputs"]
        merged = results["merged"][0]["_outputs"]
        summary["mismatched_requests"] = sum(a != b for a, b in zip(multi, merged, strict=True))
        summary["speedup_vs_merged"] = common.ratio(summary["merged"]["median_seconds"],
                                                    summary["multi-lora"]["median_seconds"])
        rows.append([f"{num} adapters: merged / multi-lora", summary["speedup_vs_merged"], None])
        report["results"][str(num)] = summary
    print(f"\n== {NAME}: {args.repeats} repeat(s), median wall time ==")
    print(common.format_table(["system", "wall s", "out tok/s"], rows))
    for num, summary in report["results"].items():
        print(f"{num} adapters: multi-lora vs merged outputs differ in "
              f"{summary['mismatched_requests']} of {args.num_requests} requests")
    report["load_avg_1m_end"] = common.environment()["load_avg_1m"]
    out = common.write_json(NAME, report, args.out)
    print(f"\nwrote {out}")
    return report


def run_base(path: Path, prompts, args) -> dict:
    """Every request in one call, no adapters: the ceiling."""
    import sglc

    engine = sglc.Engine(path, dtype=args.dtype, device=args.device,
                         max_total_tokens=args.max_total_tokens)
    try:
        with common.timed() as t:
            outs = engine.generate(prompts, common.greedy_params(args.output_len))
    finally:
        engine.shutdown()
    return {"seconds": t.seconds, "output_tokens": sum(len(o.token_ids) for o in outs),
            "_outputs": [o.token_ids for o in outs]}


if __name__ == "__main__":
    main()
