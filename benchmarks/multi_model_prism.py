"""Several models in one engine (Prism): a shared, elastic KV arena with deadline-first
scheduling against a static equal split of the same memory, on bursty, skewed arrivals.

Models: the embedded default model and two random-weight Llamas of other sizes ("mid",
"large"; `common.ModelSpec`), all fp32 on the CPU, all resident. Memory: the models'
weights plus `--kv-mib` MiB of KV, the same budget for every system.

Arrivals (generated, from `random.Random(--seed)`): one Gamma renewal process with
coefficient of variation `--cv` (> 1: bursts) at `--rate` requests per second for
`--duration` seconds; each request goes to a model drawn from a Zipf distribution of
exponent `--skew` over the models in `--popularity` order (the first is the most popular).
A request has a random prompt of `--prompt-len` tokens (uniform between the two bounds) and
`--output-len` greedy output tokens (EOS ignored). Each model's latency target (`slo_ms`) is
`--slo-scale` x its latency for one typical request served alone (measured first).

Systems (each a fresh PrismEngine over the same models and budget, run interleaved):
    prism           kv_sharing="elastic", model_order="edf"
    elastic, fcfs   elastic pools, the oldest request's model first
    static, edf     each model a fixed third of the KV arena, deadline first
    static split    each model a fixed third, the oldest request's model first (baseline)

Measured: SLO attainment (finished within the model's target, from the scheduled arrival),
output tokens per second over the run, p50/p99 latency, retractions; and each model's
activation latency (its weights dropped, then reloaded from disk by a request).

Run `python benchmarks/multi_model_prism.py` (`--quick` for a smoke run).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the script runs from any directory)

NAME = "multi_model_prism"
SPECS = {  # random-weight models beside the default one; KV per token 4 KiB and 6 KiB (fp32)
    "mid": common.ModelSpec(hidden_size=256, num_layers=4, num_heads=4, num_kv_heads=2,
                            intermediate_size=704, vocab_size=4096, seed=1),
    "large": common.ModelSpec(hidden_size=384, num_layers=6, num_heads=6, num_kv_heads=2,
                              intermediate_size=1024, vocab_size=8192, seed=2),
}
SYSTEMS = {
    "prism": {"kv_sharing": "elastic", "model_order": "edf"},
    "elastic, fcfs": {"kv_sharing": "elastic", "model_order": "fcfs"},
    "static, edf": {"kv_sharing": "static", "model_order": "edf"},
    "static split": {"kv_sharing": "static", "model_order": "fcfs"},
}


def model_paths() -> dict[str, Path]:
    from sglc.runtime.engine.engine import default_model_path

    return {"default": default_model_path(), **{n: common.model_dir(s) for n, s in SPECS.items()}}


def vocab_sizes(paths: dict[str, Path]) -> dict[str, int]:
    import json

    return {n: json.loads((p / "config.json").read_text())["vocab_size"] for n, p in paths.items()}


def arrivals(args: argparse.Namespace, vocab: dict[str, int]) -> list[dict[str, Any]]:
    """The generated trace: (time, model, prompt ids, output length), time-ordered."""
    rng = random.Random(args.seed)
    order = args.popularity
    weights = [1 / (k + 1) ** args.skew for k in range(len(order))]
    shape = 1 / args.cv ** 2  # Gamma with mean 1/rate and this CV
    trace, t = [], 0.0
    while True:
        t += rng.gammavariate(shape, 1 / (shape * args.rate))
        if t > args.duration:
            return trace
        model = rng.choices(order, weights)[0]
        n = rng.randint(*args.prompt_len)
        trace.append({"t": t, "model": model,
                      "prompt": common.random_prompts(rng, [n], vocab[model])[0],
                      "max_new_tokens": rng.randint(*args.output_len)})


def budget(paths: dict[str, Path], kv_mib: float) -> int:
    """The models' fp32 weights (as loaded) plus the KV share."""
    from sglc.runtime.models.loader import load_model_dir
    from sglc.runtime.prism.weights import weight_bytes

    weights = sum(weight_bytes(load_model_dir(p, dtype="float32", load_tokenizer=False).model)
                  for p in paths.values())
    return weights + int(kv_mib * (1 << 20))


def solo_latency(engine: Any, name: str, vocab: int, args: argparse.Namespace) -> float:
    """Seconds for one typical request alone on `engine` (median of three, after a warmup)."""
    from sglc.runtime.core import SamplingParams

    rng = random.Random(7)
    n = sum(args.prompt_len) // 2
    params = SamplingParams(**common.greedy_params(sum(args.output_len) // 2))
    times = []
    for _ in range(4):
        prompt = common.random_prompts(rng, [n], vocab)[0]  # fresh: no cached prefix
        with common.timed() as t:
            engine[name].generate([prompt], params)
        times.append(t.seconds)
    return statistics.median(times[1:])


def replay(engine: Any, trace: list[dict[str, Any]], slo_ms: dict[str, float]) -> dict[str, Any]:
    """Submit the trace at its times; per request its latency and whether it met its SLO."""
    from sglc.runtime.core import SamplingParams

    done = threading.Event()
    finished: dict[int, tuple[float, int]] = {}
    lock = threading.Lock()

    def on_output(k: int):
        def record(out: Any) -> None:
            with lock:
                finished[k] = (time.perf_counter(), len(out.token_ids))
                if len(finished) == len(trace):
                    done.set()
        return record

    start = time.perf_counter()
    for k, req in enumerate(trace):
        delay = start + req["t"] - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        params = SamplingParams(**common.greedy_params(req["max_new_tokens"]))
        engine[req["model"]].submit([req["prompt"]], params, on_output=on_output(k))
    done.wait()
    latencies = {k: finished[k][0] - (start + trace[k]["t"]) for k in finished}
    met = [latencies[k] * 1000 <= slo_ms[trace[k]["model"]] for k in finished]
    wall = max(f for f, _ in finished.values()) - start
    per_model = {}
    for name in slo_ms:
        mine = [k for k in finished if trace[k]["model"] == name]
        per_model[name] = {"requests": len(mine), "slo_attainment": (
            sum(met[k] for k in mine) / len(mine) if mine else None)}
    stats = {n: engine[n].stats() for n in slo_ms}
    lat = sorted(latencies.values())
    return {"slo_attainment": sum(met) / len(met), "wall_s": wall,
            "output_tokens_per_s": sum(n for _, n in finished.values()) / wall,
            "latency_p50_s": lat[len(lat) // 2], "latency_p99_s": lat[int(0.99 * (len(lat) - 1))],
            "retractions": sum(s["num_retractions"] for s in stats.values()),
            "per_model": per_model}


def activation_latency(paths: dict[str, Path], memory: int, vocab: dict[str, int]) -> dict[str, float]:
    """Each model's reload time: dropped, then a one-token request brings it back."""
    from sglc.runtime.core import SamplingParams
    from sglc.runtime.prism import PrismEngine

    with PrismEngine(paths, memory_budget=memory, dtype="float32") as engine:
        for name in paths:
            for _ in range(3):
                engine.drop(name)
                engine[name].generate([[5, 6, 7]], SamplingParams(max_new_tokens=1))
        stats = engine.stats()["models"]
    return {n: statistics.median(stats[n]["activation_s"]) for n in paths}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_common_args(parser, repeats=2)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of arrivals")
    parser.add_argument("--rate", type=float, default=3.0, help="requests per second")
    parser.add_argument("--cv", type=float, default=3.0, help="Gamma arrivals' CV (burstiness)")
    parser.add_argument("--skew", type=float, default=1.5, help="Zipf exponent over models")
    parser.add_argument("--popularity", nargs="+", default=["large", "default", "mid"],
                        help="models, most popular first")
    parser.add_argument("--prompt-len", type=int, nargs=2, default=[64, 192])
    parser.add_argument("--output-len", type=int, nargs=2, default=[16, 64])
    parser.add_argument("--kv-mib", type=float, default=6.0, help="KV memory beside the weights")
    parser.add_argument("--slo-scale", type=float, default=5.0,
                        help="each model's SLO: this x its latency alone")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.repeats = 6.0, 1
    env, _, _ = common.start(args.threads)
    from sglc.runtime.prism import PrismEngine

    paths = model_paths()
    vocab = vocab_sizes(paths)
    memory = budget(paths, args.kv_mib)
    with PrismEngine(paths, memory_budget=memory, dtype="float32") as engine:
        solo = {n: solo_latency(engine, n, vocab[n], args) for n in paths}
    slo_ms = {n: args.slo_scale * s * 1000 for n, s in solo.items()}
    trace = arrivals(args, vocab)
    counts = {n: sum(r["model"] == n for r in trace) for n in paths}
    print(f"{len(trace)} requests {counts}; SLOs (ms) "
          + ", ".join(f"{n} {v:.0f}" for n, v in slo_ms.items()))

    def system(options: dict[str, str]):
        def run(_: int) -> dict[str, Any]:
            with PrismEngine(paths, memory_budget=memory, dtype="float32", slo_ms=slo_ms,
                             **options) as engine:
                return replay(engine, trace, slo_ms)
        return run

    runs = common.interleave({n: system(o) for n, o in SYSTEMS.items()}, args.repeats)
    results = {}
    for name, measured in runs.items():
        results[name] = {key: common.median([m[key] for m in measured]) for key in
                         ("slo_attainment", "output_tokens_per_s", "latency_p50_s",
                          "latency_p99_s", "wall_s", "retractions")}
        results[name]["per_model"] = measured[0]["per_model"]
        results[name]["runs"] = measured
    base = results["static split"]
    rows = [[name, r["slo_attainment"], r["output_tokens_per_s"], r["latency_p50_s"],
             r["latency_p99_s"], r["retractions"],
             common.ratio(r["slo_attainment"], base["slo_attainment"]),
             common.ratio(r["output_tokens_per_s"], base["output_tokens_per_s"])]
            for name, r in results.items()]
    print(common.format_table(["system", "SLO attain.", "out tok/s", "p50 s", "p99 s",
                               "retractions", "attain. vs static", "tok/s vs static"], rows))
    activation = activation_latency(paths, memory, vocab)
    print("activation (reload from disk), s: "
          + ", ".join(f"{n} {v:.3f}" for n, v in activation.items()))
    env_end = common.environment()
    path = common.write_json(NAME, {
        "environment": env, "load_avg_1m_end": env_end["load_avg_1m"],
        "workload": {k: v for k, v in vars(args).items() if k != "out"} | {
            "requests": len(trace), "requests_per_model": counts, "memory_budget": memory},
        "solo_latency_s": solo, "slo_ms": slo_ms, "results": results,
        "slo_attainment_ratio": common.ratio(results["prism"]["slo_attainment"],
                                             base["slo_attainment"]),
        "throughput_ratio": common.ratio(results["prism"]["output_tokens_per_s"],
                                         base["output_tokens_per_s"]),
        "activation_s": activation}, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
