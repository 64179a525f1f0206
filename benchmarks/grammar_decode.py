"""Grammar constraints (issue 25): mask time per token, compile time, and Lark-checked samples.

1. **Mask time per token and compile time**, per grammar of tests/runtime/grammars.py (SQL
   subset, arithmetic, JSON, nested lists, a toy language), at two vocabularies: the embedded
   default model's tokenizer and a **synthetic 128k vocabulary** (`matcher.
   synthetic_token_bytes`: the 256 bytes plus random ASCII words; no download). Compile time
   is `grammar_cache.build_grammar` (an llguidance `LLMatcher` for the vocabulary; the
   `LLTokenizer` is built once per vocabulary, reported apart). Mask time is
   `GrammarMatcher.fill_bitmask` into a CPU int32 row, on random walks that pick an allowed
   token uniformly (a stop id once the text is complete, with probability 1/4), restarting
   when a walk finishes or reaches 64 tokens: p50 and p99 microseconds over `--fills` fills.
2. **Next to the regex path**, the regular languages of grammars.REGULAR, written both as a
   Lark grammar and as a regex: the same walks through `RegexMatcher` (outlines-core index +
   our mask cache), its compile time being `index_cache.build_index`.
3. **xgrammar**, where it imports (not a project dependency): otherwise "skipped".
4. **Samples checked by Lark**: `--samples` (200 by default) generations per grammar from the
   tests' random-weight tiny Llama at temperature 1 (`max_new_tokens` 64), each finished one
   parsed by Lark's own parser on the same grammar; how many finished, parsed, and hit
   `max_new_tokens`.

Target printed: mask p50 under 50 us per token at 128k. Writes benchmarks/out/grammar_decode.json.
"""

from __future__ import annotations

import argparse
import importlib.util
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
from grammars import GRAMMARS, REGULAR, parses  # noqa: E402

from sglc.constraints.grammar import lark_grammar  # noqa: E402
from sglc.runtime.constrained.base import BaseMatcher  # noqa: E402
from sglc.runtime.constrained.grammar_cache import build_grammar, llg_tokenizer  # noqa: E402
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


def _vocabularies(quick: bool) -> dict[str, tuple[TokenVocabulary, Any]]:
    """name -> (vocabulary, encoder or None)."""
    from transformers import AutoTokenizer

    from sglc.runtime.engine import default_model_path

    tok = AutoTokenizer.from_pretrained(default_model_path())
    default = build_vocabulary(tok, len(tok), [tok.eos_token_id])
    size = 32768 if quick else 131072
    synthetic = vocabulary_from_token_bytes(synthetic_token_bytes(size), size + 1, [size])
    return {f"default model ({default.width:,})": (default, make_encoder(tok)),
            f"synthetic {synthetic.width // 1024}k": (synthetic, None)}


def _walk_times(new_matcher: Any, vocab: TokenVocabulary, fills: int, seed: int) -> list[float]:
    """Microseconds per fill_bitmask on random walks (see the module docstring)."""
    rng = random.Random(seed)
    row = torch.zeros(vocab.mask_words, dtype=torch.int32)
    stops = set(vocab.stop_ids)
    times: list[float] = []
    matcher: BaseMatcher = new_matcher()
    steps = 0
    while len(times) < fills:
        start = time.perf_counter_ns()
        matcher.fill_bitmask(row)
        times.append((time.perf_counter_ns() - start) / 1000.0)
        allowed = np.flatnonzero(np.unpackbits(row.numpy().view(np.uint8), bitorder="little"))
        text = [int(t) for t in allowed if int(t) not in stops]
        can_stop = len(text) < len(allowed)
        if not text or (can_stop and rng.random() < 0.25) or steps >= MAX_WALK:
            matcher, steps = new_matcher(), 0
            continue
        matcher.advance(rng.choice(text))
        steps += 1
    return times


def _quantiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def measure_masks(vocabs: dict[str, tuple[TokenVocabulary, Any]], fills: int,
                  seed: int) -> list[dict[str, Any]]:
    rows = []
    for vocab_name, (vocab, encode) in vocabs.items():
        start = time.perf_counter()
        tokenizer = llg_tokenizer(vocab, encode)
        tokenizer_s = time.perf_counter() - start
        cases = [(name, "grammar", text, None) for name, text in GRAMMARS.items()]
        cases += [(name, path, text, regex) for name, (text, regex) in REGULAR.items()
                  for path in ("grammar", "regex")]
        for name, path, text, regex in cases:
            if path == "grammar":
                compiled = build_grammar(lark_grammar(text), vocab, tokenizer)
                seconds = compiled.build_seconds
                times = _walk_times(lambda c=compiled: GrammarMatcher(c), vocab, fills, seed)
            else:
                index = build_index(regex, vocab)
                seconds = index.build_seconds
                times = _walk_times(lambda c=index: RegexMatcher(c), vocab, fills, seed)
            p50, p99 = _quantiles(times)
            rows.append({"vocab": vocab_name, "grammar": name, "path": path,
                         "compile_ms": seconds * 1000, "mask_p50_us": p50, "mask_p99_us": p99,
                         "fills": len(times), "tokenizer_s": tokenizer_s})
    return rows


def measure_xgrammar() -> str:
    if importlib.util.find_spec("xgrammar") is None:
        return "xgrammar not installed: skipped"
    return "xgrammar installed, but this benchmark does not drive it yet: skipped"


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
    parser.add_argument("--samples", type=int, default=200, help="generations per grammar")
    args = parser.parse_args()
    common.set_threads(args.threads)
    env = common.environment()
    print(f"{env['date_utc']}  load avg {env['load_avg_1m']:.2f}")
    fills = 200 if args.quick else args.fills
    masks = measure_masks(_vocabularies(args.quick), fills, args.seed)
    print("\nMask time per token (fill_bitmask) and compile time")
    print(common.format_table(
        ["vocabulary", "grammar", "path", "compile ms", "mask p50 us", "mask p99 us"],
        [[r["vocab"], r["grammar"], r["path"], r["compile_ms"], r["mask_p50_us"],
          r["mask_p99_us"]] for r in masks]))
    for vocab in dict.fromkeys(r["vocab"] for r in masks):
        print(f"llguidance tokenizer for {vocab}: "
              f"{next(r['tokenizer_s'] for r in masks if r['vocab'] == vocab):.2f} s (once)")
    big = [r for r in masks if r["vocab"].startswith("synthetic") and r["path"] == "grammar"]
    worst = max(r["mask_p50_us"] for r in big)
    print(f"target: grammar mask p50 < {TARGET_P50_US:.0f} us at 128k: worst p50 "
          f"{worst:.1f} us -> {'met' if worst < TARGET_P50_US else 'NOT met'}")
    xgrammar = measure_xgrammar()
    print(xgrammar)
    samples = sample_and_parse(20 if args.quick else args.samples, args.seed)
    print("\nSamples at temperature 1 (random-weight tiny Llama, max_new_tokens 64), "
          "checked by Lark")
    print(common.format_table(
        ["grammar", "samples", "finished", "parsed by Lark", "hit max_new_tokens", "seconds"],
        [[r["grammar"], r["samples"], r["finished"], r["parsed_by_lark"],
          r["hit_max_new_tokens"], r["seconds"]] for r in samples]))
    path = common.write_json(NAME, {"environment": env, "args": vars(args), "masks": masks,
                                    "xgrammar": xgrammar, "samples": samples}, args.out)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
