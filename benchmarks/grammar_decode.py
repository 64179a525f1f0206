"""Grammar constraints (issue 25): mask time per token, compile time, and Lark-checked samples.

1. **Mask time per token and compile time**, per grammar of tests/runtime/grammars.py (SQL
   subset, arithmetic, JSON, nested lists, a toy language), at the vocabularies `--vocabs`
   names: ``default``, the embedded default model's tokenizer; ``synthetic``, a **synthetic
   128k vocabulary** (`matcher.synthetic_token_bytes`: the 256 bytes plus random ASCII words;
   no download); ``trained``, a **trained 128k byte-level BPE** (`trained_vocab.py`: trained
   here on site-packages' Python sources and docs, cached under benchmarks/out/), whose
   tokens share prefixes the way a real tokenizer's do. Compile time
   is `grammar_cache.build_grammar` (an llguidance `LLMatcher` for the vocabulary, on the
   tokenizer `Tokenizers.for_grammar` picks, with or without llguidance's slices, as the
   engine does; the two `LLTokenizer`s are built once per vocabulary, reported apart). Mask
   time is
   `GrammarMatcher.fill_bitmask` into a CPU int32 row, on random walks that pick an allowed
   token uniformly (a stop id once the text is complete, with probability 1/4), restarting
   when a walk finishes or reaches 64 tokens: p50 and p99 microseconds over `--fills` fills.
   The walks that chose to stop are parsed by Lark (`walks parsed`: parsed / finished).
   Each grammar runs three times on llguidance: `grammar`, as the engine runs it (masks
   kept by grammar position in the mask cache, `grammar_keys`, shared by the walks of a
   grammar as by the requests of one; and, in its llguidance tokenizer, the tokens the
   grammar never allows left out and each large class of tokens no terminal tells apart
   walked as one, `grammar_vocab`: the `mask cache; vocabulary` column says what the cache
   held at the end and how many tokens the tokenizer left out), `grammar, no cache` (that
   tokenizer, no cache), and `llguidance alone` (the vocabulary's own tokenizer, no
   cache). Compile time includes finding those tokens and building that tokenizer. `advance p50 us` is the time of `advance`, where the cached path follows its
   keys, so that no part of a token's cost goes unmeasured.
2. **The regex path**: a grammar whose language is regular (`route_grammar`: no rule
   recurses and the terminals split where the rules do; grammars.REGULAR and the SQL subset)
   decodes on the regex path in the engine, as its regex. Such a grammar gets a second row,
   `regex`: the same walks through `RegexMatcher` (outlines-core index + our mask cache) on
   the regex `route_grammar` made, its compile time being `index_cache.build_index`. The
   `engine path` column says which of its rows the engine runs.
3. **xgrammar**, where it imports (not a project dependency; `xgrammar_compare.py`): the
   same walks through an xgrammar matcher over the same token bytes, on the grammar's EBNF
   translation (or the regex, on the regex rows), its compile time and p50/p99 as columns.
4. **Samples checked by Lark**: `--samples` (200 by default) generations per grammar from the
   tests' random-weight tiny Llama at temperature 1 (`max_new_tokens` 64), each finished one
   parsed by Lark's own parser on the same grammar; how many finished, parsed, and hit
   `max_new_tokens`.

`--repeats N` measures every row N times over the same walks and reports the median of each
time (the machine's speed varies between runs by up to 2x; each repeat's p50 is kept in the
JSON as `mask_p50_us_runs`).

Target printed: mask p50 under 50 us per token at 128k, on llguidance alone and on the path
the engine takes for each grammar. Writes benchmarks/out/grammar_decode.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import sglc  # before tests/ joins sys.path: its sglc/ folder would shadow the package

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.append(str(HERE.parent / "tests"))
sys.path.append(str(HERE.parent / "tests" / "runtime"))
import common  # noqa: E402
import xgrammar_compare  # noqa: E402
from grammars import GRAMMARS, REGULAR, parses  # noqa: E402
from trained_vocab import trained_tokenizer  # noqa: E402

from sglc.constraints.grammar import lark_grammar, route_grammar  # noqa: E402
from sglc.runtime.constrained.base import BaseMatcher  # noqa: E402
from sglc.runtime.constrained.grammar_cache import Tokenizers, build_grammar  # noqa: E402
from sglc.runtime.constrained.grammar_matcher import GrammarMatcher  # noqa: E402
from sglc.runtime.constrained.index_cache import build_index  # noqa: E402
from sglc.runtime.constrained.jump_forward import make_encoder  # noqa: E402
from sglc.runtime.constrained.matcher import RegexMatcher, synthetic_token_bytes  # noqa: E402
from sglc.runtime.constrained.vocabulary import (  # noqa: E402
    TokenVocabulary,
    build_vocabulary,
    vocabulary_from_token_bytes,
)

NAME = "grammar_decode"
MAX_WALK = 64
TARGET_P50_US = 50.0


VOCABS = ("default", "synthetic", "trained")


def _vocabularies(names: list[str], quick: bool,
                  corpus_mb: float) -> dict[str, tuple[TokenVocabulary, Any]]:
    """name -> (vocabulary, encoder or None), for the `--vocabs` names."""
    from transformers import AutoTokenizer

    from sglc.runtime.engine import default_model_path

    size = 32768 if quick else 131072
    vocabs = {}
    if "default" in names:
        tok = AutoTokenizer.from_pretrained(default_model_path())
        default = build_vocabulary(tok, len(tok), [tok.eos_token_id])
        vocabs[f"default model ({default.width:,})"] = (default, make_encoder(tok))
    if "synthetic" in names:
        synthetic = vocabulary_from_token_bytes(synthetic_token_bytes(size), size + 1, [size])
        vocabs[f"synthetic {synthetic.width // 1024}k"] = (synthetic, None)
    if "trained" in names:
        tok = trained_tokenizer(size, corpus_mb)
        trained = build_vocabulary(tok, tok.get_vocab_size(), [tok.token_to_id("<|endoftext|>")])
        vocabs[f"trained BPE {trained.width // 1024}k"] = (trained, make_encoder(tok))
    return vocabs


def _grammars() -> dict[str, str]:
    """name -> Lark text: the context-free grammars, then the regular ones."""
    return {**GRAMMARS, **{name: text for name, (text, _) in REGULAR.items()}}


def _walk_times(new_matcher: Any, vocab: TokenVocabulary, fills: int,
                seed: int) -> tuple[list[float], list[bytes], list[float]]:
    """Microseconds per fill_bitmask on random walks (see the module docstring), the texts of
    the walks that chose to stop, and microseconds per `advance` (where the grammar keys of
    the mask cache are followed)."""
    rng = random.Random(seed)
    row = torch.zeros(vocab.mask_words, dtype=torch.int32)
    stops = set(vocab.stop_ids)
    times: list[float] = []
    advances: list[float] = []
    finished: list[bytes] = []
    matcher: BaseMatcher = new_matcher()
    walk: list[int] = []
    while len(times) < fills:
        start = time.perf_counter_ns()
        matcher.fill_bitmask(row)
        times.append((time.perf_counter_ns() - start) / 1000.0)
        allowed = np.flatnonzero(np.unpackbits(row.numpy().view(np.uint8), bitorder="little"))
        allowed = allowed[allowed < vocab.width]  # xgrammar sets the row's padding bits
        text = [int(t) for t in allowed if int(t) not in stops]
        stopping = len(text) < len(allowed) and (not text or rng.random() < 0.25)
        if stopping:
            finished.append(vocab.decode(walk))
        if not text or stopping or len(walk) >= MAX_WALK:
            matcher, walk = new_matcher(), []
            continue
        walk.append(rng.choice(text))
        start = time.perf_counter_ns()
        matcher.advance(walk[-1])
        advances.append((time.perf_counter_ns() - start) / 1000.0)
    return times, finished, advances


def _num_parsed(grammar: str, texts: list[bytes]) -> str:
    """'parsed / finished' of walk texts under Lark's parser."""
    ok = sum(parses(grammar, t.decode("utf-8", "replace")) for t in texts)
    return f"{ok}/{len(texts)}"


def _quantiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def measure_masks(vocabs: dict[str, tuple[TokenVocabulary, Any]], fills: int, seed: int,
                  use_xgrammar: bool, threads: int) -> list[dict[str, Any]]:
    rows = []
    for vocab_name, (vocab, encode) in vocabs.items():
        start = time.perf_counter()
        tokenizers = Tokenizers(vocab, encode)
        tokenizers.plain  # noqa: B018 - both tokenizers, built before the clock runs on masks
        tokenizer_s = time.perf_counter() - start
        xgr_compiler, xgr_tokenizer_s = (xgrammar_compare.new_compiler(vocab, threads)
                                         if use_xgrammar else (None, None))
        cases = []
        for name, text in _grammars().items():
            route = route_grammar(text)
            cases.append((name, "grammar", text, None, route.path))
            cases.append((name, "grammar, no cache", text, None, None))
            cases.append((name, "llguidance alone", text, None, None))
            if route.regex is not None:
                cases.append((name, "regex", text, route.regex, route.path))
        for name, path, text, regex, engine_path in cases:
            if path != "regex":
                grammar = lark_grammar(text)
                if path == "llguidance alone":  # the vocabulary's own tokenizer, no keys
                    shared = tokenizers.for_grammar(grammar).tokenizer
                    compiled = build_grammar(grammar, vocab, shared)
                else:  # as the engine builds it: keys, and the tokens it never allows left out
                    compiled = build_grammar(grammar, vocab, tokenizers)
                seconds = compiled.build_seconds
                if path != "grammar":  # no keys, no mask cache
                    compiled = dataclasses.replace(compiled, keys=None, extras={})
                times, done, advances = _walk_times(lambda c=compiled: GrammarMatcher(c), vocab,
                                                    fills, seed)
                masks = compiled.extras.get("masks")
                cached = ("" if compiled.keys is None else
                          f"{len(masks)} masks, {masks.used_bytes / 2**20:.1f} MiB; ") + \
                    (f"{compiled.left_out:,} tokens left out" if compiled.left_out else "")
            else:
                index = build_index(regex, vocab)
                seconds = index.build_seconds
                times, done, advances = _walk_times(lambda c=index: RegexMatcher(c), vocab,
                                                     fills, seed)
                cached = ""
            p50, p99 = _quantiles(times)
            row = {"vocab": vocab_name, "grammar": name, "path": path,
                   "engine_path": "yes" if path == engine_path else "",
                   "compile_ms": seconds * 1000, "mask_p50_us": p50, "mask_p99_us": p99,
                   "advance_p50_us": _quantiles(advances)[0], "mask_cache": cached,
                   "fills": len(times), "walks_parsed": _num_parsed(text, done),
                   "tokenizer_s": tokenizer_s, "xgr_tokenizer_s": xgr_tokenizer_s}
            if xgr_compiler is not None and path in ("grammar", "regex"):
                row.update(_measure_xgrammar(xgr_compiler, vocab, text, regex, fills, seed))
            rows.append(row)
            print(f"  {vocab_name} {name} {path}: p50 {p50:.1f} us"
                  + (f", xgrammar {row['xgr_p50_us']:.1f} us" if "xgr_p50_us" in row else ""),
                  flush=True)
    return rows


def _measure_xgrammar(compiler: Any, vocab: TokenVocabulary, text: str, regex: str | None,
                      fills: int, seed: int) -> dict[str, Any]:
    compiled, seconds = xgrammar_compare.compile_grammar(compiler, text, regex)
    times, done, _ = _walk_times(lambda: xgrammar_compare.XgrammarMatcher(compiled), vocab,
                                 fills, seed)
    p50, p99 = _quantiles(times)
    return {"xgr_compile_ms": seconds * 1000, "xgr_p50_us": p50, "xgr_p99_us": p99,
            "xgr_walks_parsed": _num_parsed(text, done)}


def sample_and_parse(num_samples: int, seed: int) -> list[dict[str, Any]]:
    """Generations at temperature 1 from the tests' random-weight Llama, parsed by Lark."""
    from model_fixtures import make_model_dir

    from sglc.runtime.core import FinishReason, SamplingParams

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        make_model_dir(Path(tmp) / "llama", "llama")
        with sglc.Engine(Path(tmp) / "llama", max_total_tokens=1 << 16, max_n=num_samples,
                         index_cache_dir=str(Path(tmp) / "index")) as engine:
            for name, grammar in GRAMMARS.items():
                params = SamplingParams(temperature=1.0, seed=seed, n=num_samples,
                                        max_new_tokens=64)
                start = time.perf_counter()
                outs = engine.generate([[1, 40, 41]], params, grammar=grammar)
                seconds = time.perf_counter() - start
                done = [o for o in outs if o.finish_reason is FinishReason.STOP]
                rows.append({
                    "grammar": name, "samples": len(outs), "finished": len(done),
                    "parsed_by_lark": sum(parses(grammar, o.text) for o in done),
                    "hit_max_new_tokens": sum(o.finish_reason is FinishReason.LENGTH
                                              for o in outs),
                    "errors": sum(o.error is not None for o in outs), "seconds": seconds,
                })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser, repeats=1)
    parser.add_argument("--fills", type=int, default=2000, help="mask fills per case")
    parser.add_argument("--samples", type=int, default=200,
                        help="generations per grammar (0: skip section 4)")
    parser.add_argument("--vocabs", default="default,synthetic",
                        help=f"comma-separated vocabularies among {', '.join(VOCABS)}")
    parser.add_argument("--corpus-mb", type=float, default=40.0,
                        help="text the trained BPE learns from (trained_vocab.py)")
    parser.add_argument("--no-xgrammar", action="store_true", help="skip xgrammar columns")
    args = parser.parse_args()
    names = [n.strip() for n in args.vocabs.split(",") if n.strip()]
    if not names or set(names) - set(VOCABS):
        parser.error(f"--vocabs takes names among {', '.join(VOCABS)}, got {args.vocabs!r}")
    env = common.begin(args.threads)
    fills = 200 if args.quick else args.fills
    use_xgrammar = not args.no_xgrammar and xgrammar_compare.available()
    xgrammar = ("xgrammar: compared" if use_xgrammar else
                "xgrammar: skipped (" + ("--no-xgrammar" if args.no_xgrammar else
                                         "not installed") + ")")
    vocabs = _vocabularies(names, args.quick, args.corpus_mb)
    masks = _median_rows([measure_masks(vocabs, fills, args.seed, use_xgrammar, args.threads)
                          for _ in range(args.repeats)])
    print_masks(masks, use_xgrammar)
    print(xgrammar)
    samples = sample_and_parse(20 if args.quick else args.samples, args.seed) \
        if args.samples > 0 else []
    if samples:
        print("\nSamples at temperature 1 (random-weight tiny Llama, max_new_tokens 64), "
              "checked by Lark")
        print(common.format_table(
            ["grammar", "samples", "finished", "parsed by Lark", "hit max_new_tokens",
             "seconds"],
            [[r["grammar"], r["samples"], r["finished"], r["parsed_by_lark"],
              r["hit_max_new_tokens"], r["seconds"]] for r in samples]))
    env["load_avg_end"] = common.environment()["load_avg_1m"]
    path = common.write_json(NAME, {"environment": env, "args": vars(args), "masks": masks,
                                    "xgrammar": xgrammar, "samples": samples}, args.out)
    print(f"\nload avg at the end {env['load_avg_end']:.2f}; wrote {path}")


def _median_rows(repeats: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The rows of the first repeat with every timing replaced by its median over the
    repeats (the same walks each time; the machine's speed is what varies), and the p50s of
    each repeat kept as `mask_p50_us_runs`."""
    merged = []
    for rows in zip(*repeats, strict=True):
        row = dict(rows[0])
        for key, value in rows[0].items():
            if key.endswith(("_ms", "_us")) and isinstance(value, float):
                row[key] = statistics.median(r[key] for r in rows)
        row["mask_p50_us_runs"] = [r["mask_p50_us"] for r in rows]
        merged.append(row)
    return merged


def print_masks(masks: list[dict[str, Any]], use_xgrammar: bool) -> None:
    print("\nMask time per token (fill_bitmask) and compile time")
    headers = ["vocabulary", "grammar", "path", "engine path", "compile ms", "mask p50 us",
               "mask p99 us", "advance p50 us", "mask cache; vocabulary", "walks parsed"]
    keys = ["vocab", "grammar", "path", "engine_path", "compile_ms", "mask_p50_us",
            "mask_p99_us", "advance_p50_us", "mask_cache", "walks_parsed"]
    if use_xgrammar:
        headers += ["xgr compile ms", "xgr p50 us", "xgr p99 us", "xgr walks parsed"]
        keys += ["xgr_compile_ms", "xgr_p50_us", "xgr_p99_us", "xgr_walks_parsed"]
    print(common.format_table(headers, [[r.get(k, "") for k in keys] for r in masks]))
    for vocab in dict.fromkeys(r["vocab"] for r in masks):
        first = next(r for r in masks if r["vocab"] == vocab)
        xgr = (f"; xgrammar's {first['xgr_tokenizer_s']:.2f} s"
               if first["xgr_tokenizer_s"] is not None else "")
        print(f"tokenizer for {vocab}: llguidance's {first['tokenizer_s']:.2f} s{xgr} (once)")
    for vocab in dict.fromkeys(r["vocab"] for r in masks if "128k" in r["vocab"]):
        mine = [r for r in masks if r["vocab"] == vocab]
        for what, rows in (("llguidance alone", [r for r in mine
                                                 if r["path"] == "llguidance alone"]),
                           ("llguidance with the mask cache and tokens left out",
                            [r for r in mine if r["path"] == "grammar"]),
                           ("the engine's path", [r for r in mine if r["engine_path"]])):
            worst = max(rows, key=lambda r: r["mask_p50_us"])
            print(f"target: mask p50 < {TARGET_P50_US:.0f} us at 128k ({vocab}), {what}: worst "
                  f"p50 {worst['mask_p50_us']:.1f} us ({worst['grammar']}) -> "
                  f"{'met' if worst['mask_p50_us'] < TARGET_P50_US else 'NOT met'}")

if __name__ == "__main__":
    main()
