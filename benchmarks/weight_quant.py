"""Weight-only quantization (quantization int8 / int4, group-wise) against the float model,
on the shipped default model.

- memory: bytes of the model's weights (parameters and buffers) and of the quantized
  projections alone;
- decode: output tokens/s of one request (batch 1) and of `--num-requests` at once
  (greedy, `ignore_eos`), interleaved repeats, medians;
- quality: held-out loss and greedy agreement with the float model over the default-model
  eval's held-out prompts, as in benchmarks/kv_quant.py.

    python benchmarks/weight_quant.py [--quick] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the script runs from any directory)
import kv_quant  # noqa: E402

NAME = "weight_quant"
SCHEMES = (None, "int8", "int4")


def weight_bytes(model) -> tuple[int, int]:
    """(all weights, the projections) in bytes; a tied tensor counted once."""
    from sglc.runtime.quant import QuantizedLinear

    seen, total, projections = set(), 0, 0
    for module in model.modules():
        tensors = list(module.parameters(recurse=False)) + list(module.buffers(recurse=False))
        for t in tensors:
            if id(t) in seen:
                continue
            seen.add(id(t))
            nbytes = t.numel() * t.element_size()
            total += nbytes
            is_projection = isinstance(module, QuantizedLinear) or (
                type(module).__name__ == "Linear" and module is not model.lm_head)
            projections += nbytes if is_projection else 0
    return total, projections


def decode_run(args, scheme: str | None, prompt_ids: list[list[int]]) -> dict:
    import sglc

    with sglc.Engine(max_total_tokens=args.max_total_tokens, quantization=scheme,
                     kernel_backend=args.kernel_backend) as engine:
        engine.generate(prompt_ids[:1], common.greedy_params(4))  # warm up
        with common.timed() as single:
            one = engine.generate(prompt_ids[:1], common.greedy_params(args.output_len))
        with common.timed() as batch:
            outs = engine.generate(prompt_ids, common.greedy_params(args.output_len))
    return {"batch1_tokens_per_s": len(one[0].token_ids) / single.seconds,
            "batch_tokens_per_s": sum(len(o.token_ids) for o in outs) / batch.seconds}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    args = kv_quant.quality_parser(__doc__, "batched decode prompts").parse_args(argv)
    if args.quick:
        kv_quant.shrink_for_quick(args)
    return args


def main(argv: list[str] | None = None) -> dict:
    import sglc

    args = parse_args(argv)
    common.set_threads(args.threads)
    env_start = common.environment()
    results: dict[str, dict] = {}
    greedy: dict[str, list[list[int]]] = {}
    for scheme in SCHEMES:
        name = scheme or "float32"
        with sglc.Engine(max_total_tokens=args.max_total_tokens, quantization=scheme,
                         kernel_backend=args.kernel_backend) as engine:
            prompts, replies = kv_quant.eval_conversations(args, engine.tokenizer)
            measured = kv_quant.quality(engine, prompts, replies, args.eval_tokens)
            total, projections = weight_bytes(engine.loaded.model)
            results[name] = {"weight_bytes": total, "projection_bytes": projections,
                             "heldout_loss": measured["heldout_loss"]}
            greedy[name] = measured.pop("_greedy")
            encoded = [engine.tokenizer.encode(p, add_special_tokens=False) for p in prompts]
            prompt_ids = [encoded[i % len(encoded)] for i in range(args.num_requests)]
        print(f"{name}: {results[name]}", flush=True)
    decode = common.interleave(
        {scheme or "float32": (lambda rep, s=scheme: decode_run(args, s, prompt_ids))
         for scheme in SCHEMES}, args.repeats)
    rows = []
    base = results["float32"]
    for name, r in results.items():
        for key in ("batch1_tokens_per_s", "batch_tokens_per_s"):
            r[key] = common.median([d[key] for d in decode[name]])
        r |= kv_quant.agreement(greedy[name], greedy["float32"])
        r["projection_bytes_ratio"] = base["projection_bytes"] / r["projection_bytes"]
        rows.append([name, r["weight_bytes"] / 2**20, r["projection_bytes"] / 2**20,
                     r["projection_bytes_ratio"], r["batch1_tokens_per_s"],
                     r["batch_tokens_per_s"], r["heldout_loss"], r["identical_outputs"],
                     r["token_agreement"]])
    print(f"\n== {NAME}: default model on CPU, {args.repeats} repeat(s), medians ==")
    print(common.format_table(
        ["weights", "MiB all", "MiB proj", "proj x smaller", "tok/s batch 1",
         f"tok/s batch {args.num_requests}", "heldout loss", "identical", "token agree"],
        rows))
    return common.save_report(NAME, env_start, args, "sglc default model", results=results)


if __name__ == "__main__":
    main()
