"""Fair scheduling (VTC, DLPM) vs fcfs and lpm, with one client overloading the engine.

Workload: two clients ask questions about their own documents (shared prefixes that do not
all fit in the cache at once); client `a` sends `--overload` times more requests than `b`,
all at the start. For each policy it reports each client's service (weighted tokens: 1 per
prompt token, 2 per generated token, `Engine.stats()["client_service"]`) over time, the
largest service difference between the clients while both are backlogged, throughput, and
the prefix-cache hit rate (DLPM's point: fair *and* cache-friendly). Two parts:
`--part sim` runs the engine's scheduler over the trace without a model (deterministic;
steps, not seconds), `--part engine` runs `sglc.Engine` on the benchmark model (wall time;
backlogged: has requests waiting in the scheduler's queue). Run with `--help` for options.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the script runs from any directory)

NAME = "fairness"
POLICIES = ("fcfs", "lpm", "vtc", "dlpm")
CLIENTS = ("a", "b")


def workload(args: argparse.Namespace, vocab_size: int) -> list[tuple[str, list[int], int]]:
    """(client, prompt, output length) of every request, interleaved as they arrive."""
    rng = random.Random(args.seed)
    requests = []
    for client, num in (("a", args.num_requests * args.overload), ("b", args.num_requests)):
        docs = common.random_prompts(rng, [args.doc_len] * args.num_docs, vocab_size)
        for _ in range(num):
            question = common.random_prompts(rng, [args.question_len], vocab_size)[0]
            requests.append((client, rng.choice(docs) + question,
                             rng.randint(args.output_len // 2, args.output_len)))
    rng.shuffle(requests)
    return requests


def max_gap(samples: list[tuple[dict[str, float], set[str]]]) -> float:
    """Largest |service a - service b| change over an interval both were backlogged."""
    worst, run = 0.0, []
    for service, backlogged in samples + [({}, set())]:
        if set(CLIENTS) <= backlogged:
            run.append(service.get("a", 0.0) - service.get("b", 0.0))
            continue
        if run:
            worst = max(worst, max(run) - min(run))
        run = []
    return worst


def timeline(samples: list[tuple[dict[str, float], set[str]]], points: int = 8) -> list:
    """Each client's service at `points` evenly spaced samples."""
    step = max(1, len(samples) // points)
    return [{c: round(s.get(c, 0.0)) for c in CLIENTS} for s, _ in samples[step - 1 :: step]]


def run_sim(policy: str, requests, args) -> dict:
    from sglc.runtime.config import EngineConfig
    from sglc.runtime.scheduler.simulate import TraceRequest, simulate

    trace = [TraceRequest(0, c, tuple(p), n) for c, p, n in requests]
    config = EngineConfig(policy=policy, max_total_tokens=args.max_total_tokens,
                          max_running_requests=args.max_running, dlpm_quantum=args.quantum,
                          track_client_service=True)
    result = simulate(config, trace, args.sim_steps, max_context_len=args.doc_len + 256)
    done = next((r.step for r in result.steps if r.mode is None), args.sim_steps)
    samples = [(r.service, set(r.backlogged)) for r in result.steps[:done]]
    latency = {c: common.median(v) for c, v in result.latency_steps.items()}
    return {"max_gap": max_gap(samples), "steps": done, "finished": result.num_finished,
            "prefill_tokens": result.num_prefill_tokens, "hit_rate": result.cache["hit_rate"],
            "median_latency_steps": latency, "timeline": timeline(samples)}


def run_engine(path: Path, policy: str, requests, args) -> dict:
    import sglc

    engine = sglc.Engine(path, dtype=args.dtype, device=args.device,
                         max_total_tokens=args.max_total_tokens,
                         max_running_requests=args.max_running, policy=policy,
                         dlpm_quantum=args.quantum, track_client_service=True)
    lock, finished = threading.Lock(), threading.Event()
    outputs = []

    def on_output(out) -> None:
        with lock:
            outputs.append(out)
            if len(outputs) == len(requests):
                finished.set()

    samples = []
    try:
        params = [{**common.greedy_params(n), "client": c} for c, _, n in requests]
        start = time.perf_counter()
        engine.submit([p for _, p, _ in requests], params, on_output=on_output)
        while not finished.wait(args.sample_s):
            # NOTE: a peek at the loop thread's queue (a copy, read only) for who waits
            waiting = list(engine.core.scheduler.waiting)
            backlogged = {r.params.client for r in waiting}
            samples.append((engine.stats()["client_service"], backlogged))
        seconds = time.perf_counter() - start
        service = engine.stats()["client_service"]
    finally:
        engine.shutdown()
    prompt_tokens = sum(o.usage.prompt_tokens for o in outputs)
    return {"seconds": seconds, "max_gap": max_gap(samples),
            "tokens_per_s": sum(o.usage.completion_tokens for o in outputs) / seconds,
            "hit_rate": sum(o.usage.cached_tokens for o in outputs) / prompt_tokens,
            "service": service, "timeline": timeline(samples)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(p, repeats=1)
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--dtype", default="float32", help="float32 (default), bfloat16, ...")
    p.add_argument("--part", choices=["sim", "engine", "both"], default="both")
    p.add_argument("--num-requests", type=int, default=48, help="client b's requests")
    p.add_argument("--overload", type=int, default=3, help="client a sends this many times more")
    p.add_argument("--num-docs", type=int, default=6)
    p.add_argument("--doc-len", type=int, default=256)
    p.add_argument("--question-len", type=int, default=8)
    p.add_argument("--output-len", type=int, default=16)
    p.add_argument("--max-total-tokens", type=int, default=3072)
    p.add_argument("--max-running", type=int, default=32)
    p.add_argument("--quantum", type=float, default=2048.0, help="dlpm_quantum")
    p.add_argument("--sim-steps", type=int, default=3000)
    p.add_argument("--sample-s", type=float, default=0.05, help="engine: stats sampling period")
    args = p.parse_args(argv)
    if args.quick:
        args.num_requests, args.num_docs, args.doc_len, args.output_len = 8, 3, 64, 6
        args.max_total_tokens, args.sim_steps, args.quantum = 512, 600, 256.0
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    env_start, spec, path = common.start(args.threads)
    requests = workload(args, spec.vocab_size)
    print(f"workload: client a {args.num_requests * args.overload} requests, b "
          f"{args.num_requests}; {args.num_docs} documents of {args.doc_len} tokens per "
          f"client, {args.question_len}-token questions, <= {args.output_len} output tokens; "
          f"KV pool {args.max_total_tokens} tokens, seed {args.seed}")
    report: dict = {"benchmark": NAME, "env": env_start, "model": spec.name,
                    "workload": vars(args) | {"out": None}, "sim": {}, "engine": {}}
    if args.part in ("sim", "both"):
        rows = []
        for policy in POLICIES:
            r = report["sim"][policy] = run_sim(policy, requests, args)
            rows.append([policy, r["max_gap"], r["steps"], r["prefill_tokens"], r["hit_rate"],
                         r["median_latency_steps"].get("a"), r["median_latency_steps"].get("b")])
        print("\n== scheduler simulation (no model; steps) ==")
        print(common.format_table(["policy", "max gap", "steps", "prefill tok", "hit rate",
                                   "lat a", "lat b"], rows))
        for policy in POLICIES:
            print(f"  {policy} service over time: {report['sim'][policy]['timeline']}")
    if args.part in ("engine", "both"):
        systems = {p: (lambda rep, p=p: run_engine(path, p, requests, args)) for p in POLICIES}
        results = common.interleave(systems, args.repeats)
        rows = []
        for policy, runs in results.items():
            best = min(runs, key=lambda r: r["seconds"])
            report["engine"][policy] = {"runs": runs}
            rows.append([policy, best["max_gap"], best["seconds"], best["tokens_per_s"],
                         best["hit_rate"]])
        print(f"\n== sglc.Engine ({spec.name}, fp32, CPU) ==")
        print(common.format_table(["policy", "max gap", "wall s", "out tok/s", "hit rate"], rows))
        for policy, runs in results.items():
            print(f"  {policy} service over time: {runs[0]['timeline']}")
    report["load_avg_1m_end"] = common.environment()["load_avg_1m"]
    out = common.write_json(NAME, report, args.out)
    print(f"\nwrote {out}")
    return report


if __name__ == "__main__":
    main()
