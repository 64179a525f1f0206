"""MixAttention (Rajput et al.): KV shared across layers and sliding-window layers, against
the same model with every layer full attention and owning its KV.

Four variants of one random-weight Llama shape (the same weights; a layer reading another's
KV drops its k/v projections), listed as layer types (F full, S sliding) and KV sources:

- standard:       F F F F F F F F, every layer owns its KV;
- sliding only:   F S S S F S S S, every layer owns its KV (the window's effect alone);
- shared pairs:   F F F F F F F F, layers 1, 3, 5, 7 read 0, 2, 4, 6 (sharing alone);
- mixattention:   F S S S F S S S, 2-3 read 1, 4 reads 0, 6-7 read 5 (the paper's
                  MA-Offset pattern: 3 of 8 layers own KV).

Measured: KV bytes per token held while the batch decodes at a long context, how many
tokens fit in the standard model's bytes, and decode tokens/s. KV bytes per token count the
slots in use after each forward pass, each at its buffers' bytes per slot: a full slot per
token in the layers without a window, and in the sliding layers' own slot space only the
window's slots each request still holds (sliding layers free what leaves their window),
taken after the last decode step, when every request holds its longest context. A prefill
in one pass holds the whole prompts' sliding slots for that pass; chunked prefill bounds
that by the chunk. The batch's prompts are prefilled in one pass (no
chunking), then decode together; the decode phase is the longest `usage.decode_s` (first
token to the end) of the batch. Interleaved repeats, medians, the prefix cache off so every
repeat computes the same.

    python benchmarks/mixattention.py [--quick] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the script runs from any directory)

NAME = "mixattention"
F, S = "full_attention", "sliding_attention"
VARIANTS: dict[str, tuple[list[str], list[int | None] | None]] = {
    "standard": ([F] * 8, None),
    "sliding only": ([F, S, S, S, F, S, S, S], None),
    "shared pairs": ([F] * 8, [None, 0, None, 2, None, 4, None, 6]),
    "mixattention": ([F, S, S, S, F, S, S, S], [None, None, 1, 1, 0, None, 5, 5]),
}


def base_config(args: argparse.Namespace) -> dict:
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 4096,
        "hidden_size": 256, "intermediate_size": 704, "num_hidden_layers": 8,
        "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 32,
        "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "tie_word_embeddings": True, "bos_token_id": 1, "eos_token_id": 2,
        "sliding_window": args.window,
    }


def write_variants(args: argparse.Namespace) -> dict[str, Path]:
    """Each variant's model directory: one set of random weights, the k/v projections of
    layers that read another's KV left out."""
    import torch
    from safetensors.torch import save_file

    from sglc.runtime.models import LlamaForCausalLM, ModelConfig

    base = base_config(args)
    torch.manual_seed(args.seed)
    model = LlamaForCausalLM(ModelConfig.from_hf(base))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02) if p.dim() > 1 else None
    state = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    paths = {}
    for name, (layer_types, sources) in VARIANTS.items():
        path = common.OUT_DIR / "models" / f"mixattention-{name.replace(' ', '-')}-w{args.window}"
        path.mkdir(parents=True, exist_ok=True)
        readers = [i for i, s in enumerate(sources or []) if s is not None]
        dropped = {f"model.layers.{i}.self_attn.{p}_proj.weight" for i in readers for p in "kv"}
        save_file({k: v.contiguous() for k, v in state.items() if k not in dropped},
                  str(path / "model.safetensors"), metadata={"format": "pt"})
        config = {**base, "layer_types": layer_types, "kv_source_layers": sources}
        (path / "config.json").write_text(json.dumps(config, indent=2))
        paths[name] = path
    return paths


def watch_kv_bytes(engine) -> list[tuple[int, int]]:
    """Records (KV bytes in use, tokens held) after each forward pass's window release:
    full slots at the full buffers' bytes per slot, sliding slots at theirs."""
    pool, kv = engine.core.runner.kv_pool, engine.core.scheduler.kv
    full_bytes = sliding_bytes = 0
    for layer in sorted(set(pool.kv_owner)):
        k, v = pool.layer(layer)
        if layer in pool.sliding_layers:
            sliding_bytes += (k.nbytes + v.nbytes) // pool.num_sliding_slots
        else:
            full_bytes += (k.nbytes + v.nbytes) // pool.num_slots
    seen: list[tuple[int, int]] = []
    release = kv.release_window

    def in_use(allocator) -> int:
        return allocator.num_usable_slots - allocator.num_free_slots

    def watched(req) -> None:
        release(req)
        tokens = in_use(kv.allocator)
        sliding = 0 if kv.sliding is None else in_use(kv.sliding.allocator)
        seen.append((tokens * full_bytes + sliding * sliding_bytes, tokens))

    kv.release_window = watched
    return seen


def bytes_per_token(seen: list[tuple[int, int]]) -> float:
    """KV bytes per held token after the last decode step (every request at its longest)."""
    used, tokens = seen[-1]
    return used / tokens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser, repeats=3)
    parser.add_argument("--batch", type=int, default=8, help="requests decoding together")
    parser.add_argument("--context", type=int, default=1024, help="prompt tokens each")
    parser.add_argument("--output-len", type=int, default=32, help="new tokens each")
    parser.add_argument("--window", type=int, default=128, help="sliding window (tokens)")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.context, args.output_len, args.repeats = 4, 384, 16, 2
    env = common.begin(args.threads)
    import sglc

    paths = write_variants(args)
    rng = random.Random(args.seed)
    prompts = common.random_prompts(rng, [args.context] * args.batch, 4096)
    total = args.batch * (args.context + args.output_len) + 64
    engines = {name: sglc.Engine(path, dtype="float32", max_total_tokens=total,
                                 disable_radix_cache=True, chunked_prefill_size=0,
                                 max_prefill_tokens=args.batch * args.context)
               for name, path in paths.items()}
    try:
        for engine in engines.values():
            # the layouts compared on one execution path: the compiled CPU decode step
            # (runtime/models/compiled_decode.py) runs only the standard one
            engine.core.runner.compiled_decode = False
            engine.generate(prompts[:1], common.greedy_params(2))  # warm up
        watched = {name: watch_kv_bytes(e) for name, e in engines.items()}

        def system(name: str):
            def run(_rep: int) -> dict:
                outs = engines[name].generate(prompts, common.greedy_params(args.output_len))
                decode_s = max(o.usage.decode_s for o in outs)
                return {"decode_seconds": decode_s,
                        "prefill_seconds": max(o.usage.prefill_s for o in outs),
                        "decode_tokens_per_s": args.batch * (args.output_len - 1) / decode_s}
            return run

        runs = common.interleave({name: system(name) for name in engines}, args.repeats)
        memory = {name: bytes_per_token(seen) for name, seen in watched.items()}
    finally:
        for engine in engines.values():
            engine.shutdown()
    results = {}
    base_bytes = memory["standard"]
    base_tps = common.median([r["decode_tokens_per_s"] for r in runs["standard"]])
    for name, (layer_types, sources) in VARIANTS.items():
        tps = common.median([r["decode_tokens_per_s"] for r in runs[name]])
        prefill_s = common.median([r["prefill_seconds"] for r in runs[name]])
        results[name] = {
            "layer_types": layer_types, "kv_source_layers": sources,
            "kv_layers": sum(s is None for s in (sources or [None] * 8)),
            "kv_bytes_per_token": memory[name],
            "kv_bytes_ratio": memory[name] / base_bytes,
            "tokens_in_same_bytes": base_bytes / memory[name],
            "decode_tokens_per_s": tps, "decode_speedup": common.ratio(tps, base_tps),
            "prefill_seconds": prefill_s,
            "runs": runs[name],
        }
    rows = [[name, r["kv_layers"], r["kv_bytes_per_token"], r["kv_bytes_ratio"],
             r["tokens_in_same_bytes"], r["decode_tokens_per_s"], r["decode_speedup"],
             r["prefill_seconds"]] for name, r in results.items()]
    print(common.format_table(["variant", "KV layers", "KV B/token", "x bytes",
                               "x tokens", "decode tok/s", "x decode", "prefill s"], rows))
    env_end = common.environment()
    payload = {"args": vars(args), "env_start": env, "env_end": env_end, "results": results}
    print(f"load avg {env['load_avg_1m']:.2f} -> {env_end['load_avg_1m']:.2f}")
    print(f"wrote {common.write_json(NAME, payload, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
