"""Constrained decoding: jump-forward on vs off, sglc vs outlines, mask and index-build costs.

1. **Jump-forward.** 64 requests (distinct short text prompts), each generating an 8-field
   JSON object with fixed keys (`SCHEMA`: name, age, city, job, email, score, active, tags;
   bounded strings, integer ranges, a boolean, an array of at most 3 short strings, so even a
   random-weight model finishes) on the engine benchmark's random-weight ~40M Llama (fp32,
   CPU) with the embedded default model's tokenizer (`program_throughput.model_with_tokenizer`).
   Greedy by default (`--temperature`). Two `sglc.Engine`s, radix cache on in both:
   `enable_jump_forward=True` vs `False`. Each run is a fresh engine (cold cache; engine
   construction not timed) and one `generate(..., json_schema=SCHEMA)` call over all requests.
   Quoted (medians over interleaved repeats): forward passes (= decode batches + extend
   batches: after a jump the forced tokens run in the next pass with the other running
   requests, which makes that pass an extend batch, so the extends are counted), decode steps, forced tokens, prefill tokens, wall time, and whether
   every output is valid (`Output.is_valid`, `json.loads`, `jsonschema.validate`).
2. **outlines.** If the `outlines` package imports, the same 64 prompts go through outlines'
   transformers integration (`outlines.from_transformers` + `Generator.batch`: one left-padded
   transformers `generate` call, outlines-core logits processor) on the same weights and
   tokenizer, interleaved with the sglc runs. It gets sglc's canonical regex of the schema
   (`outlines.types.Regex`), so both decode the same language; building its generator (the
   token index) is inside its timed region, as sglc's index lookup is inside `generate`.
   Forward passes are counted with a hook on the model. Otherwise it prints
   "outlines not installed: skipped" (it is not a project dependency).
   Besides the batch's forward passes (bounded by its slowest request), each request's own
   passes are reported (`Output.usage.forward_passes`, median and max over the requests).
2b. **The shipped default model.** The same sglc on/off comparison on `sglc/default_model`
   (trained weights and its own tokenizer, fp32 like the benchmark model), which writes
   short, plausible values (`"name":"Marco","city":"Toronto"`) where the random weights fill
   every string to its maxLength: the ratios depend on how much of an object is forced, so
   both are reported. `--models` picks either.
3. **Mask overhead and index builds.** `matcher.measure_mask_overhead` (microseconds per
   `fill_bitmask`, i.e. per generated token per request, on a random constrained walk) for the
   8-field schema's regex over **synthetic** vocabularies of 32k and 128k tokens
   (`matcher.synthetic_token_bytes`: the 256 bytes plus random ASCII words) and over the
   benchmark tokenizer's real vocabulary; and `index_cache.build_index` time (no cache) for
   the 8-field, a nested and an array schema over the same vocabularies.

Targets printed: jump-forward >= 2x fewer forward passes and >= 1.5x faster; sglc >= 3x the
outlines throughput; mask p50 <= 50 us at 128k; 8-field index build <= 1 s at 32k.
Run `python benchmarks/json_decode.py --help` for the options.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the script runs from any directory)
from program_throughput import WORDS, model_with_tokenizer  # noqa: E402

NAME = "json_decode"
JF_ON, JF_OFF, OUTLINES = "sglc jump-forward on", "sglc jump-forward off", "outlines"
DEFAULT_MODEL_LABEL = "the shipped default model (trained weights, its own tokenizer)"


def _obj(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props),
            "additionalProperties": False}


def _str(max_len: int) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_len}


SCHEMA = _obj({
    "name": _str(16),
    "age": {"type": "integer", "minimum": 0, "maximum": 120},
    "city": _str(16),
    "job": _str(16),
    "email": {"type": "string", "pattern": r"[a-z0-9]{1,12}@[a-z]{1,8}\.(com|org|net)"},
    "score": {"type": "integer", "minimum": 0, "maximum": 100},
    "active": {"type": "boolean"},
    "tags": {"type": "array", "items": _str(8), "maxItems": 3},
})
NESTED_SCHEMA = _obj({
    "id": {"type": "integer", "minimum": 1, "maximum": 99999},
    "customer": _obj({
        "name": _str(24),
        "address": _obj({"street": _str(32), "city": _str(16),
                         "zip": {"type": "string", "pattern": "[0-9]{5}"}}),
    }),
    "paid": {"type": "boolean"},
})
ARRAY_SCHEMA = _obj({
    "items": {"type": "array", "minItems": 1, "maxItems": 4, "items": _obj({
        "sku": {"type": "string", "pattern": "[A-Z]{3}-[0-9]{4}"},
        "qty": {"type": "integer", "minimum": 1, "maximum": 99},
        "note": _str(16),
    })},
})
BUILD_SCHEMAS = {"8-field": SCHEMA, "nested": NESTED_SCHEMA, "array": ARRAY_SCHEMA}
TARGETS = {"forward_pass_ratio": 2.0, "jump_forward_speedup": 1.5, "speedup_vs_outlines": 3.0,
           "mask_p50_us_at_128k": 50.0, "build_seconds_8_field_at_32k": 1.0}


def make_prompts(args: argparse.Namespace) -> list[str]:
    rng = random.Random(args.seed)
    return [f"Record {i}: the {rng.choice(WORDS)} {rng.choice(WORDS)} person, as JSON:\n"
            for i in range(args.num_requests)]


def sampling(args: argparse.Namespace) -> dict[str, Any]:
    return {"max_new_tokens": args.max_new_tokens, "temperature": args.temperature}


def check_outputs(texts: list[str]) -> list[str | None]:
    """Per text: None if it is JSON valid against SCHEMA, else why not."""
    import jsonschema

    problems: list[str | None] = []
    for text in texts:
        try:
            jsonschema.validate(json.loads(text), SCHEMA)
            problems.append(None)
        except (ValueError, jsonschema.ValidationError) as exc:
            problems.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    return problems


# -- systems ----------------------------------------------------------------------------------
def engine_options(args: argparse.Namespace, jump_forward: bool, cache_dir: str) -> dict:
    return dict(dtype="float32", device=args.device, max_total_tokens=args.max_total_tokens,
                seed=args.seed, enable_jump_forward=jump_forward, index_cache_dir=cache_dir)


def run_sglc(path: Path, prompts: list[str], args: argparse.Namespace, options: dict) -> dict:
    """One cold run: a fresh engine, all requests in one timed `generate` call."""
    import sglc

    engine = sglc.Engine(path, **options)
    try:
        with common.timed() as t:
            outs = engine.generate(prompts, sampling(args), json_schema=SCHEMA)
        stats = engine.stats()
    finally:
        engine.shutdown()
    texts = [o.text for o in outs]
    problems = check_outputs(texts)
    req_passes = sorted(o.usage.forward_passes for o in outs)
    invalid = [i for i, (o, p) in enumerate(zip(outs, problems, strict=True))
               if not o.is_valid or p is not None or o.error]
    return {
        "seconds": t.seconds,
        "forward_passes": stats["num_decode_batches"] + stats["num_extend_batches"],
        "decode_steps": stats["num_decode_batches"],
        "extend_batches": stats["num_extend_batches"],
        "decode_rows": stats["num_decode_tokens"],  # request-rows over all decode batches
        "forced_tokens": stats["num_forced_tokens"],
        "prefill_tokens": stats["num_prefill_tokens"],
        "output_tokens": sum(len(o.token_ids) for o in outs),
        "output_chars": sum(map(len, texts)),
        # forward passes each request took part in (Output.usage): its own latency in steps
        "req_passes_median": common.median(req_passes),
        "req_passes_p90": req_passes[int(0.9 * (len(req_passes) - 1))],
        "req_passes_max": req_passes[-1],
        "valid": len(outs) - len(invalid),
        "num_requests": len(outs),
        "_invalid": [{"index": i, "text": texts[i], "is_valid": outs[i].is_valid,
                      "finish_reason": str(outs[i].finish_reason), "error": outs[i].error,
                      "problem": problems[i]} for i in invalid],
        "_texts": texts,
    }


class OutlinesRunner:
    """outlines on transformers with the benchmark weights (model loaded once, not timed)."""

    def __init__(self, path: Path, regex: str, device: str) -> None:
        import outlines
        import torch
        from transformers import AutoTokenizer, LlamaForCausalLM

        self.regex = regex
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = LlamaForCausalLM.from_pretrained(path, dtype=torch.float32).to(device).eval()
        self.outlines = outlines
        self.version = metadata.version("outlines")

    def run(self, prompts: list[str], args: argparse.Namespace, rep: int) -> dict:
        import torch
        from outlines.types import Regex

        calls = [0]
        hook = self.model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
        kwargs: dict[str, Any] = {"max_new_tokens": args.max_new_tokens}
        if args.temperature > 0:
            kwargs.update(do_sample=True, temperature=args.temperature)
            torch.manual_seed(args.seed + rep)
        else:
            kwargs.update(do_sample=False)
        try:
            with common.timed() as t, torch.inference_mode():
                model = self.outlines.from_transformers(self.model, self.tokenizer)
                generator = self.outlines.Generator(model, Regex(self.regex))
                texts = generator.batch(prompts, **kwargs)
        finally:
            hook.remove()
        problems = check_outputs(texts)
        invalid = [i for i, p in enumerate(problems) if p is not None]
        return {
            "seconds": t.seconds,
            "forward_passes": calls[0],
            "decode_steps": max(calls[0] - 1, 0),
            "output_chars": sum(map(len, texts)),
            "valid": len(texts) - len(invalid),
            "num_requests": len(texts),
            "_invalid": [{"index": i, "text": texts[i], "problem": problems[i]}
                         for i in invalid],
            "_texts": texts,
        }


def outlines_status(args: argparse.Namespace) -> str | None:
    """None when outlines can be measured, else why not (printed)."""
    if args.skip_outlines:
        return "outlines: skipped (--skip-outlines)"
    if importlib.util.find_spec("outlines") is None:
        return "outlines not installed: skipped"
    try:
        import outlines  # noqa: F401
        from outlines.types import Regex  # noqa: F401
    except Exception as exc:  # a broken install counts as missing
        return f"outlines not installed: skipped (import failed: {type(exc).__name__}: {exc})"
    return None


# -- part 1 and 2 -----------------------------------------------------------------------------
def measure_decoding(path: Path, args: argparse.Namespace, regex: str, label: str,
                     with_outlines: bool = True) -> dict:
    prompts = make_prompts(args)
    skipped = outlines_status(args) if with_outlines else "outlines: not run on this model"
    with tempfile.TemporaryDirectory(prefix="sglc-index-") as cache_dir:
        systems: dict[str, Any] = {}
        for name, jf in ((JF_ON, True), (JF_OFF, False)):
            opts = engine_options(args, jf, cache_dir)
            systems[name] = lambda rep, opts=opts: run_sglc(path, prompts, args, opts)
            # warm-up (not measured): builds the index into the cache dir, warms torch
            common.run_in_thread(lambda opts=opts: run_sglc(path, prompts[:2], args, opts))
        runner = None
        if skipped is None:
            runner = common.run_in_thread(lambda: OutlinesRunner(path, regex, args.device))
            common.run_in_thread(lambda: runner.run(prompts[:2], args, 0))  # warm-up
            systems[OUTLINES] = lambda rep: runner.run(prompts, args, rep)
        results = common.interleave(systems, args.repeats)
    return summarize_decoding(args, prompts, results, skipped, runner, label)


def summarize_decoding(args, prompts, results, skipped, runner, label: str) -> dict:
    keys = ["forward_passes", "decode_steps", "extend_batches", "decode_rows", "forced_tokens",
            "prefill_tokens", "output_tokens", "output_chars", "req_passes_median",
            "req_passes_max", "seconds"]
    summary: dict[str, Any] = {}
    for name, runs in results.items():
        med = {k: common.median([r[k] for r in runs]) if k in runs[0] else None for k in keys}
        summary[name] = {
            **{f"median_{k}": v for k, v in med.items()},
            "requests_per_second": common.ratio(len(prompts), med["seconds"]),
            "all_valid": all(r["valid"] == r["num_requests"] for r in runs),
            "min_valid": min(r["valid"] for r in runs),
            "invalid_examples": [x for r in runs for x in r["_invalid"]][:5],
            "example_output": runs[0]["_texts"][0],
            "runs": [{k: v for k, v in r.items() if not k.startswith("_")} for r in runs],
        }
    on, off = summary[JF_ON], summary[JF_OFF]
    fewer = common.ratio(off["median_forward_passes"], on["median_forward_passes"])
    fewer_per_req = common.ratio(off["median_req_passes_median"], on["median_req_passes_median"])
    faster = common.ratio(off["median_seconds"], on["median_seconds"])
    vs_outlines = (common.ratio(summary[OUTLINES]["median_seconds"], on["median_seconds"])
                   if OUTLINES in summary else None)

    cols = ["system", "fwd passes", "decode steps", "extend batches", "decode rows",
            "forced tok", "prefill tok", "output tok", "req passes p50", "req passes max",
            "valid", "wall s", "req/s"]
    rows = [[name, s["median_forward_passes"], s["median_decode_steps"],
             s["median_extend_batches"], s["median_decode_rows"], s["median_forced_tokens"],
             s["median_prefill_tokens"], s["median_output_tokens"],
             s["median_req_passes_median"], s["median_req_passes_max"],
             f"{s['min_valid']}/{len(prompts)}", s["median_seconds"], s["requests_per_second"]]
            for name, s in summary.items()]
    rows.append(["ratio off / on", fewer, common.ratio(off["median_decode_steps"],
                                                       on["median_decode_steps"]),
                 None, common.ratio(off["median_decode_rows"], on["median_decode_rows"]),
                 None, None, None, fewer_per_req, None, None, faster, None])
    if vs_outlines is not None:
        rows.append(["ratio outlines / sglc jf on", common.ratio(
            summary[OUTLINES]["median_forward_passes"], on["median_forward_passes"]),
            None, None, None, None, None, None, None, None, None, vs_outlines, None])

    print(f"\n== constrained decoding on {label}: {len(prompts)} requests, 8-field JSON "
          f"schema, {'greedy' if args.temperature == 0 else f'temperature {args.temperature}'}"
          f", max_new_tokens {args.max_new_tokens}; {args.repeats} repeat(s), medians ==")
    print(common.format_table(cols, rows))
    print(f"\njump-forward: {_x(fewer)} fewer forward passes (target >= "
          f"{TARGETS['forward_pass_ratio']}x: {_met(fewer, TARGETS['forward_pass_ratio'])}), "
          f"{_x(faster)} faster (target >= {TARGETS['jump_forward_speedup']}x: "
          f"{_met(faster, TARGETS['jump_forward_speedup'])}); per request (median of its "
          f"own passes): {_x(fewer_per_req)} fewer")
    saved = off["median_decode_steps"] - on["median_decode_steps"]
    added = on["median_extend_batches"] - off["median_extend_batches"]
    print(f"  jump-forward saved {saved:g} decode steps and added {added:g} extend batches: "
          "a pass that carries forced tokens is an extend batch (the others decode in it)")
    if vs_outlines is not None:
        print(f"sglc (jump-forward on) throughput is {_x(vs_outlines)} outlines' (target >= "
              f"{TARGETS['speedup_vs_outlines']}x: "
              f"{_met(vs_outlines, TARGETS['speedup_vs_outlines'])}); outlines {runner.version}")
    else:
        print(skipped)
    print("notes: forward passes = decode batches + extend batches (a pass carrying forced "
          "tokens is a mixed extend batch, counted); with jump-forward off the only extends are "
          "the prompt prefills; decode rows = requests summed over decode batches; req passes "
          "= the passes one request took part in (Output.usage.forward_passes), p50 and max "
          "over the requests: the batch's passes are bounded by its slowest request. Outputs differ "
          "between on and off: a jump appends the tokenizer's own tokens for the forced text, "
          "which the model then conditions on. outlines: one left-padded transformers generate "
          "over all prompts, forward passes counted by a model hook; its output tokens are not "
          "counted (it returns text).")
    for name, s in summary.items():
        status = "all valid" if s["all_valid"] else f"INVALID outputs: {s['invalid_examples']}"
        print(f"{name}: {status}; e.g. {s['example_output']}")
    return {
        "model": label,
        "num_requests": len(prompts),
        "prompts_example": prompts[:2],
        "sampling": sampling(args),
        "results": summary,
        "forward_pass_ratio": fewer,
        "per_request_forward_pass_ratio": fewer_per_req,
        "jump_forward_speedup": faster,
        "speedup_vs_outlines": vs_outlines,
        "outlines": skipped or f"measured (outlines {runner.version})",
    }


# -- part 3 -----------------------------------------------------------------------------------
def vocabularies(args: argparse.Namespace, path: Path) -> dict[str, Any]:
    """label -> TokenVocabulary: synthetic ones of each size, and the benchmark tokenizer's."""
    from transformers import AutoTokenizer

    from sglc.runtime.constrained.matcher import synthetic_token_bytes
    from sglc.runtime.constrained.vocabulary import build_vocabulary, vocabulary_from_token_bytes

    vocabs = {}
    for size in args.vocab_sizes:
        vocabs[f"synthetic {size // 1000}k"] = vocabulary_from_token_bytes(
            synthetic_token_bytes(size, args.seed), size + 1, [size])
    tok = AutoTokenizer.from_pretrained(path)
    vocabs[f"tokenizer ({len(tok):,} tok)"] = build_vocabulary(tok, 32000, [tok.eos_token_id])
    return vocabs


def measure_constraint_costs(args: argparse.Namespace, path: Path) -> dict:
    from sglc.constraints.schema import regex_for_schema
    from sglc.runtime.constrained.index_cache import build_index
    from sglc.runtime.constrained.matcher import measure_mask_overhead

    vocabs = common.run_in_thread(lambda: vocabularies(args, path))
    regexes = {name: regex_for_schema(schema) for name, schema in BUILD_SCHEMAS.items()}

    masks = {}
    for label, vocab in vocabs.items():
        runs = [common.run_in_thread(lambda vocab=vocab, rep=rep: measure_mask_overhead(
            vocab.width - 1, regex=regexes["8-field"], fills=args.fills,
            seed=args.seed + rep, vocabulary=vocab)) for rep in range(args.repeats)]
        masks[label] = {
            "vocab_width": vocab.width,
            "synthetic": label.startswith("synthetic"),
            **{f"median_{k}": common.median([r[k] for r in runs])
               for k in ("p50_us", "p99_us", "mean_us", "states_seen")},
            "runs": runs,
        }
        print(f"  mask overhead {label}: p50 {masks[label]['median_p50_us']:.2f} us", flush=True)

    builds: dict[str, dict[str, Any]] = {}
    for schema_name, regex in regexes.items():
        builds[schema_name] = {}
        for label, vocab in vocabs.items():
            times = [common.run_in_thread(lambda regex=regex, vocab=vocab: build_index(
                regex, vocab).build_seconds) for _ in range(args.build_repeats)]
            builds[schema_name][label] = {"median_seconds": common.median(times),
                                          "seconds": times}
            print(f"  index build {schema_name} / {label}: {common.median(times):.3f} s",
                  flush=True)

    labels = list(vocabs)
    print(f"\n== mask overhead: fill_bitmask per token per request, 8-field schema regex, "
          f"{args.fills} fills x {args.repeats} repeat(s) (medians); 'synthetic' vocabularies "
          "are made up (the 256 bytes + random ASCII words), not a real tokenizer's ==")
    print(common.format_table(
        ["vocabulary", "width", "p50 us", "p99 us", "mean us", "states seen"],
        [[lb, m["vocab_width"], m["median_p50_us"], m["median_p99_us"], m["median_mean_us"],
          m["median_states_seen"]] for lb, m in masks.items()]))
    print(f"\n== index build seconds (build_index, no cache; median of {args.build_repeats}) ==")
    print(common.format_table(["schema", *labels],
                              [[s, *(b[lb]["median_seconds"] for lb in labels)]
                               for s, b in builds.items()]))

    big = next((m for lb, m in masks.items() if m["synthetic"] and m["vocab_width"] > 100_000),
               None)
    small_label = next((lb for lb, m in masks.items() if m["synthetic"]
                        and 30_000 <= m["vocab_width"] <= 33_000), None)
    p50_big = big["median_p50_us"] if big else None
    build_small = builds["8-field"][small_label]["median_seconds"] if small_label else None
    if p50_big is not None:
        print(f"\nmask p50 at 128k: {p50_big:.2f} us (target <= "
              f"{TARGETS['mask_p50_us_at_128k']:.0f} us: "
              f"{_met(TARGETS['mask_p50_us_at_128k'], p50_big)})")
    if build_small is not None:
        print(f"8-field index build at 32k: {build_small:.3f} s (target <= "
              f"{TARGETS['build_seconds_8_field_at_32k']:.0f} s: "
              f"{_met(TARGETS['build_seconds_8_field_at_32k'], build_small)})")
    return {"regexes": regexes, "mask_overhead": masks, "index_build": builds,
            "mask_p50_us_at_128k": p50_big, "build_seconds_8_field_at_32k": build_small}


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _met(value: float | None, target: float | None) -> str:
    if value is None or target is None:
        return "n/a"
    return "met" if value >= target else "NOT met"


# -- main -------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(p, repeats=3)
    p.add_argument("--num-requests", type=int, default=64)
    p.add_argument("--max-new-tokens", type=int, default=320,
                   help="room for the longest object the schema allows (default 320)")
    p.add_argument("--temperature", type=float, default=0.0,
                   help="0 = greedy (default); > 0 samples, seeded by --seed")
    p.add_argument("--max-total-tokens", type=int, default=40000, help="sglc KV pool slots")
    p.add_argument("--device", default="cpu",
                   help="where both systems run (default cpu; the issue's numbers are CPU)")
    p.add_argument("--skip-outlines", action="store_true", help="do not run outlines")
    p.add_argument("--fills", type=int, default=2000, help="mask fills per overhead run")
    p.add_argument("--build-repeats", type=int, default=None,
                   help="index builds per schema and vocabulary (default: --repeats)")
    p.add_argument("--vocab-sizes", type=int, nargs="+", default=[32000, 128000],
                   help="synthetic vocabulary sizes (default 32000 128000)")
    p.add_argument("--models", nargs="+", choices=["benchmark", "default"],
                   default=["benchmark", "default"],
                   help="decode on the issue's random-weight benchmark model and/or the "
                        "shipped trained default model (default: both)")
    p.add_argument("--skip-decoding", action="store_true",
                   help="only the mask-overhead and index-build measurements")
    args = p.parse_args(argv)
    if args.quick:
        args.num_requests, args.repeats, args.fills = 8, 1, 200
    if args.build_repeats is None:
        args.build_repeats = args.repeats
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything here is local
    env_start, spec, base_path = common.start(args.threads)
    path = model_with_tokenizer(base_path)
    print(f"model: {spec.name} + the default model's tokenizer, fp32, {args.device}, "
          f"{args.threads} torch threads")
    from sglc.constraints.schema import regex_for_schema

    regex = regex_for_schema(SCHEMA)
    report: dict[str, Any] = {"benchmark": NAME, "env": env_start, "model": spec.name,
                              "args": vars(args) | {"out": str(args.out)},
                              "schemas": BUILD_SCHEMAS, "targets": TARGETS}
    if not args.skip_decoding and "benchmark" in args.models:
        label = f"the benchmark model ({spec.name}, random weights)"
        report["decoding"] = measure_decoding(path, args, regex, label)
    if not args.skip_decoding and "default" in args.models:
        from sglc.runtime.engine import default_model_path

        report["decoding_default_model"] = measure_decoding(
            default_model_path(), args, regex, DEFAULT_MODEL_LABEL, with_outlines=False)
    print("\nmeasuring mask overhead and index builds ...")
    report["constraint_costs"] = measure_constraint_costs(args, path)
    report["load_avg_1m_end"] = common.environment()["load_avg_1m"]
    print(f"load avg: {env_start['load_avg_1m']:.2f} at start, "
          f"{report['load_avg_1m_end']:.2f} at end")
    out = common.write_json(NAME, report, args.out)
    print(f"\nwrote {out}")
    return report


if __name__ == "__main__":
    main()
