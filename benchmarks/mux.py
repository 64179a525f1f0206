"""Model multiplexing with and without a response cache: a Zipf trace over a small and a large
model, LRU vs GDSF vs LEC ("On Optimal Caching and Model Multiplexing for Large Model
Inference", Zhu et al. 2023).

Task: open questions with checkable answers, drawn from `random.Random(--seed)`: the world
facts the default model was trained on (capitals, countries, animal kinds, flying animals,
legs, colours, sizes: `sglc.training.skills_facts`) and, `--arith-share` of them, arithmetic
("What is 37*8?"), which it mostly gets wrong. Each is asked as one chat turn, 16 greedy
tokens.

    small   the embedded default model
    large   benchmarks/response_cache.py's random-weight Llama (hidden 512, 12 layers)

"Answers well": the small model's answer is checked: it contains the right answer and none
of the wrong options (arithmetic: its last integer is the result). The large model has random
weights, so it stands in for a strong model: its cost is real (its FLOPs, from its own
answers' lengths) and its answers are counted as right. Costs are the response cache's FLOPs
estimate; the table states the ratio.

The distinct queries are split in two: the training half's outcomes are written as an
outcome log (`sglc.runtime.mux`'s rows: features, model, quality, cost) and a predictor is
trained on it as `sglc mux train` does; the trace (`--num-requests`, Zipf `--alpha` over
popularity ranks shuffled) draws from the held-out half only. Per query the multiplexer
routes by the predictor (`--threshold`, `--penalty`); without multiplexing every query goes
to the large model. Then:

  1. replay: the trace through `ResponseCache` (the engine's cache: keys, SQLite, policies)
     for each policy and size (shares of the bytes the held-out large answers take), with and
     without multiplexing: cost = FLOPs of the misses, hit rate, and quality (the share of
     requests answered well).
  2. end to end: the first `--e2e-requests` requests one at a time through a real program,
     `gen a(model="auto")`, on two engines with `response_cache=` (GDSF), with and without
     `mux=`: each routed model must equal the replay's and each answer that model's.

Run `python benchmarks/mux.py` (`--quick` for a smoke run).
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the script runs from any directory)
import response_cache as rc  # noqa: E402

NAME = "mux"
POLICIES = ("lru", "gdsf", "lec")
MODELS = ("small", "large")
PARAMS = {"max_new_tokens": 16, "temperature": 0}
PROGRAM = '''
fn ask(q: str) -> str:
    user "{q}"
    assistant: gen a(model=MODEL, max_tokens=16)
    return a
'''


@dataclass(frozen=True)
class Question:
    text: str
    answer: str
    wrong: tuple[str, ...]
    kind: str

    def is_right(self, reply: str) -> bool:
        if self.kind == "arithmetic":
            numbers = re.findall(r"-?\d+", reply)
            return bool(numbers) and numbers[-1] == self.answer
        low = reply.lower()
        return self.answer.lower() in low and not any(w.lower() in low for w in self.wrong)


def questions(args: argparse.Namespace, rng: random.Random) -> list[Question]:
    from sglc.training.skills_facts import FACT_QUESTIONS

    found: dict[str, Question] = {}
    while len(found) < args.num_queries:
        if rng.random() < args.arith_share:
            op = rng.choice("+-*")
            a, b = rng.randrange(2, 100), rng.randrange(2, 10 if op == "*" else 100)
            q = Question(f"What is {a}{op}{b}?", str(eval(f"{a}{op}{b}")), (), "arithmetic")
        else:
            make = rng.choice(FACT_QUESTIONS)
            fq = make(rng)
            text = fq.question
            if "these" in text:  # name the options in the question
                options = [fq.answer, *fq.wrong]
                rng.shuffle(options)
                text = text.replace("?", f" {', '.join(options[:-1])} or {options[-1]}?")
            q = Question(text, fq.answer, fq.wrong, make.__name__.strip("_"))
        found.setdefault(q.text, q)
    return list(found.values())


def answer(engines: dict, prompts: dict, names: list[int]) -> dict:
    """(query index, model) -> Output, every query answered by both models, batched."""
    outputs = {}
    for model, engine in engines.items():
        for k, out in zip(names, engine.generate([prompts[model][k] for k in names], PARAMS),
                          strict=True):
            outputs[k, model] = out
    return outputs


def replay(caches: dict | None, keys: dict, outputs: dict, flops: dict, trace: list[int],
           route: dict[int, str], right: dict[int, bool]) -> dict:
    """The trace through the caches (None: no cache), each query to its routed model."""
    hits, cost, good = 0, 0.0, 0
    for k in trace:
        model = route[k]
        good += model == "large" or right[k]
        if caches is not None and caches[model].lookup(keys[k, model], "r", 0) is not None:
            hits += 1
            continue
        out = outputs[k, model]
        cost += flops[model].request_flops(out.usage.prompt_tokens, len(out.token_ids))
        if caches is not None:
            caches[model].save(keys[k, model], [out], 0.0)
    return {"hits": hits, "hit_rate": hits / len(trace), "cost_flops": cost,
            "quality": good / len(trace)}


def train(rows_from: list[int], features: dict, outputs: dict, flops: dict,
          right: dict[int, bool], log_path: Path):
    """The predictor, trained as `sglc mux train` trains it, on an outcome log written with
    the library's own rows: the small model's checked outcomes and the large one's."""
    from sglc.runtime.mux import (
        FeatureSpec,
        Outcome,
        OutcomeLog,
        read_outcomes,
        train_predictor,
    )

    log = OutcomeLog(log_path)
    spec = FeatureSpec()
    for k in rows_from:
        log.write([Outcome(str(k), m, 1.0 if m == "large" or right[k] else 0.0,
                           flops[m].request_flops(outputs[k, m].usage.prompt_tokens,
                                                  len(outputs[k, m].token_ids)),
                           features[k], spec, outputs[k, m].usage.prompt_tokens,
                           len(outputs[k, m].token_ids)) for m in MODELS])
    return train_predictor(read_outcomes(log_path))


def end_to_end(args, paths: dict, qs: list[Question], prefix: list[int], route: dict,
               outputs: dict, tmp: Path, pred_path: Path, max_bytes: int, flops: dict) -> list:
    import sglc
    from sglc.runtime.executor.trace import Trace

    rows = []
    for mux in (False, True):
        engines = {m: sglc.Engine(p, max_total_tokens=8192, response_cache=str(
            tmp / f"e2e-{mux}.db"), response_cache_max_bytes=max_bytes,
            response_cache_policy="gdsf") for m, p in paths.items()}
        runtime = sglc.Runtime(models=engines, mux=pred_path if mux else None)
        model = '"auto"' if mux else '"large"'
        prog = sglc.compile(PROGRAM.replace("MODEL", model), models=runtime.model_names)
        hits, cost, good = 0, 0.0, 0
        start = time.perf_counter()
        for k in prefix:
            trace = Trace()
            text = prog.ask(qs[k].text, runtime=runtime, trace=trace)
            (call,) = [c for c in trace.to_json()["calls"] if c["kind"] == "gen"]
            chosen = call["model"]
            expected = route[k] if mux else "large"
            assert chosen == expected, (k, chosen, expected)
            assert text == outputs[k, chosen].text, (k, chosen)
            good += chosen == "large" or qs[k].is_right(text)
            if call.get("cached_response"):
                hits += 1
            else:
                out = outputs[k, chosen]
                cost += flops[chosen].request_flops(out.usage.prompt_tokens, len(out.token_ids))
        wall = time.perf_counter() - start
        for e in engines.values():
            e.shutdown()
        rows.append({"multiplexed": mux, "requests": len(prefix), "hits": hits,
                     "wall_s": wall, "cost_flops": cost, "quality": good / len(prefix)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser, repeats=1)
    parser.add_argument("--num-queries", type=int, default=600, help="distinct queries")
    parser.add_argument("--num-requests", type=int, default=4000)
    parser.add_argument("--alpha", type=float, default=0.9, help="Zipf exponent (default 0.9)")
    parser.add_argument("--arith-share", type=float, default=0.3)
    parser.add_argument("--train-share", type=float, default=0.5)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--penalty", type=float, default=1.0)
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.02, 0.05, 0.1, 0.2, 0.4])
    parser.add_argument("--e2e-requests", type=int, default=100)
    parser.add_argument("--e2e-size", type=float, default=0.1)
    args = parser.parse_args()
    if args.quick:
        args.num_queries, args.num_requests, args.e2e_requests = 120, 600, 30
    env = common.begin(args.threads)

    import sglc
    from sglc.runtime.mux import FeatureSpec, query_features
    from sglc.runtime.response_cache import ResponseCache, request_key
    from sglc.runtime.response_cache.codec import encode
    from sglc.runtime.response_cache.store import ROW_OVERHEAD_BYTES

    rng = random.Random(args.seed)
    qs = questions(args, rng)
    split = int(args.train_share * len(qs))
    train_ids, test_ids = list(range(split)), list(range(split, len(qs)))
    ranks = list(range(len(test_ids)))
    rng.shuffle(ranks)
    weights = [1.0 / (r + 1) ** args.alpha for r in ranks]
    trace = rng.choices(test_ids, weights=weights, k=args.num_requests)

    tmp = Path(tempfile.mkdtemp(prefix="sglc-mux-bench-"))
    paths = {"small": None, "large": rc.large_model_dir()}
    engines = {m: sglc.Engine(p, max_total_tokens=16384, response_cache=str(tmp / "probe.db"),
                              response_cache_max_bytes=1) for m, p in paths.items()}
    flops = {m: e.response_cache.flops for m, e in engines.items()}
    model_ids = {m: e.response_cache.model_id for m, e in engines.items()}
    cost_ratio = flops["large"].request_flops(32, 16) / flops["small"].request_flops(32, 16)
    print(f"FLOPs ratio large/small at 32 prompt + 16 output tokens: {cost_ratio:.2f}")
    tok = engines["small"].tokenizer
    prompts = {m: [rc.chat_ids(e.tokenizer, q.text) for q in qs] for m, e in engines.items()}
    features = {k: query_features(prompts["small"][k], tok.decode(prompts["small"][k],
                                                                  skip_special_tokens=False),
                                  FeatureSpec())
                for k in range(len(qs))}
    t0 = time.perf_counter()
    outputs = answer(engines, prompts, list(range(len(qs))))
    print(f"answered {len(qs)} distinct queries on both models in "
          f"{time.perf_counter() - t0:.1f} s")
    for e in engines.values():
        e.shutdown()
    right = {k: qs[k].is_right(outputs[k, "small"].text) for k in range(len(qs))}

    predictor = train(train_ids, features, outputs, flops, right, tmp / "outcomes.jsonl")
    pred_path = (tmp / "predictor").with_suffix(".json")
    predictor.save(pred_path)
    route = {k: predictor.route(features[k], MODELS, args.threshold, args.penalty).model
             for k in test_ids}
    held_out_acc = sum((route[k] == "small") == right[k] for k in test_ids) / len(test_ids)
    kinds = sorted({q.kind for q in qs})
    by_kind = {kind: {"small_right": sum(right[k] for k in test_ids if qs[k].kind == kind),
                      "routed_small": sum(route[k] == "small" for k in test_ids
                                          if qs[k].kind == kind),
                      "queries": sum(qs[k].kind == kind for k in test_ids)} for kind in kinds}
    print(f"held-out queries: small right on {sum(right[k] for k in test_ids)} of "
          f"{len(test_ids)}, routed to small {sum(route[k] == 'small' for k in test_ids)}, "
          f"routing agrees with the small model's correctness on {held_out_acc:.1%}")
    print(common.format_table(["kind", "queries", "small right", "routed small"],
                              [[k, v["queries"], v["small_right"], v["routed_small"]]
                               for k, v in by_kind.items()]))

    keys, total_bytes = {}, 0
    for k in range(len(qs)):
        for m in MODELS:
            keys[k, m] = request_key(model_ids[m], prompts[m][k], sglc.SamplingParams(**PARAMS))
    for k in test_ids:
        total_bytes += len(keys[k, "large"]) + len(encode([outputs[k, "large"]])) \
            + ROW_OVERHEAD_BYTES
    routes = {"large only": {k: "large" for k in test_ids}, "multiplexed": route,
              "small only": {k: "small" for k in test_ids},
              "oracle": {k: "small" if right[k] else "large" for k in test_ids}}
    no_cache = {name: replay(None, keys, outputs, flops, trace, r, right)
                for name, r in routes.items()}
    base = no_cache["large only"]["cost_flops"]
    print(f"\ntrace: {len(trace)} requests over {len(set(trace))} distinct held-out queries; "
          "no cache:")
    print(common.format_table(["routing", "cost FLOPs", "cost / large only", "quality"],
                              [[n, f"{r['cost_flops']:.3e}", r["cost_flops"] / base,
                                r["quality"]] for n, r in no_cache.items()]))

    sweep = []
    for share in args.sizes:
        max_bytes = max(1, int(share * total_bytes))
        for policy in POLICIES:
            for name in ("large only", "multiplexed"):
                path = tmp / f"{policy}-{share}-{name.replace(' ', '-')}.db"
                caches = {m: ResponseCache(path, model_ids[m], max_bytes=max_bytes,
                                           policy=policy, cost="flops", flops=flops[m])
                          for m in MODELS}
                result = replay(caches, keys, outputs, flops, trace, routes[name], right)
                for c in caches.values():
                    c.close()
                sweep.append({"size_share": share, "max_bytes": max_bytes, "policy": policy,
                              "routing": name, **result, "cost_vs_large_no_cache":
                              result["cost_flops"] / base})
    rows = []
    for share in args.sizes:
        got = {(r["policy"], r["routing"]): r for r in sweep if r["size_share"] == share}
        lru = got["lru", "large only"]["cost_flops"]
        for policy in POLICIES:
            plain, mux = got[policy, "large only"], got[policy, "multiplexed"]
            rows.append([f"{share:.0%}", policy, plain["hit_rate"], mux["hit_rate"],
                         plain["cost_vs_large_no_cache"], mux["cost_vs_large_no_cache"],
                         plain["cost_flops"] / mux["cost_flops"], lru / mux["cost_flops"],
                         mux["quality"]])
    print("\nreplay: hit rate, cost as a share of the large model without cache, and ratios")
    print(common.format_table(
        ["cache", "policy", "hit large only", "hit mux", "cost large only", "cost mux",
         "large only / mux", "LRU large only / mux", "quality mux"], rows))

    prefix = trace[:args.e2e_requests]
    max_bytes = max(1, int(args.e2e_size * total_bytes))
    e2e = end_to_end(args, paths, qs, prefix, route, outputs, tmp, pred_path, max_bytes, flops)
    print(f"\nend to end: first {len(prefix)} requests one at a time through `gen a(model=...)`,"
          f" GDSF cache {args.e2e_size:.0%} ({max_bytes:,} bytes); routes and answers equal "
          "the replay's")
    print(common.format_table(["routing", "hits", "wall s", "cost FLOPs", "quality"],
                              [["mux" if r["multiplexed"] else "large only", r["hits"],
                                r["wall_s"], f"{r['cost_flops']:.3e}", r["quality"]]
                               for r in e2e]))
    shutil.rmtree(tmp, ignore_errors=True)
    payload = {"args": vars(args), "environment": env, "cost_ratio_large_small": cost_ratio,
               "params_per_token": {m: f.num_params for m, f in flops.items()},
               "held_out_queries": len(test_ids), "train_queries": len(train_ids),
               "routing_agreement": held_out_acc, "by_kind": by_kind,
               "held_out_answer_bytes_large": total_bytes, "no_cache": no_cache,
               "sweep": sweep, "end_to_end": e2e, "environment_end": common.environment()}
    print(f"\nwrote {common.write_json(NAME, payload, args.out)}")


if __name__ == "__main__":
    main()
