"""Serving load: N concurrent streaming clients against `sglc serve` on loopback, and the
same clients against the in-process engine, to show what the HTTP server costs.

Each of `--clients` clients sends `--requests-per-client` streaming /v1/completions requests
back to back (closed loop): seeded random token-id prompts of mixed lengths, mixed output
lengths, `ignore_eos`, greedy. The in-process side runs the same clients as asyncio tasks
over `Engine.generate_stream`. Both stop starting requests after `--time-limit` seconds.
Reported per system (median over repeats): requests/s, output tokens/s, time to first
token and inter-token latency p50/p99 (gaps between streamed text chunks, pooled), and lost
requests (errors, or fewer tokens than asked), which must be 0. The server runs in a
subprocess (a fresh one per repeat, like the fresh engine per repeat), on the embedded
default model unless `--model` names another; model loading and one warm-up request are not timed.
Run `python benchmarks/serve_load.py --help` for the options; `--quick` for a smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the script runs from any directory)

NAME = "serve_load"
START_TIMEOUT_S = 300
REQUEST_TIMEOUT_S = 600


@dataclass(frozen=True)
class Request:
    prompt_ids: list[int]
    max_tokens: int


WARMUP = Request([5, 6, 7, 8], 4)  # one request on each system before the clock starts


@dataclass
class Result:
    """One request as its client saw it."""

    num_tokens: int = 0  # completion tokens (from usage) or streamed tokens
    ttft_s: float | None = None
    gaps_s: list[float] = field(default_factory=list)
    error: str | None = None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_common_args(p, repeats=2)
    p.add_argument("--model", default=None, help="model directory (default: the embedded one)")
    p.add_argument("--clients", type=int, default=64, help="concurrent clients (default 64)")
    p.add_argument("--requests-per-client", type=int, default=4, metavar="N")
    p.add_argument("--prompt-lens", type=int, nargs=2, default=(16, 256), metavar=("MIN", "MAX"))
    p.add_argument("--output-lens", type=int, nargs=2, default=(16, 128), metavar=("MIN", "MAX"))
    p.add_argument("--time-limit", type=float, default=300.0, metavar="SECONDS",
                   help="no new requests after this long (default 300)")
    p.add_argument("--max-total-tokens", type=int, default=None)
    args = p.parse_args(argv)
    if args.quick:
        args.clients, args.requests_per_client = 4, 2
        args.prompt_lens, args.output_lens, args.repeats = (8, 32), (4, 16), 1
    return args


def make_workload(args: argparse.Namespace, vocab_size: int) -> list[list[Request]]:
    rng = random.Random(args.seed)
    return [[Request(common.random_prompts(rng, [rng.randint(*args.prompt_lens)], vocab_size)[0],
                     rng.randint(*args.output_lens))
             for _ in range(args.requests_per_client)]
            for _ in range(args.clients)]


def engine_options(args: argparse.Namespace) -> dict:
    options = {"dtype": "float32"}
    if args.max_total_tokens is not None:
        options["max_total_tokens"] = args.max_total_tokens
    return options


# -- clients ---------------------------------------------------------------------------------
async def run_clients(workload: list[list[Request]], time_limit_s: float, send) -> dict:
    """Run every client concurrently; `send(request)` streams one request -> Result."""
    deadline = time.perf_counter() + time_limit_s
    results: list[tuple[Request, Result]] = []

    async def client(requests: list[Request]) -> None:
        for request in requests:
            if time.perf_counter() > deadline:
                return
            try:
                result = await send(request)
            except Exception as exc:  # noqa: BLE001 - counted as lost, reported
                result = Result(error=f"{type(exc).__name__}: {exc}")
            results.append((request, result))

    start = time.perf_counter()
    await asyncio.gather(*(client(requests) for requests in workload))
    return summarize_run(results, time.perf_counter() - start)


def summarize_run(results: list[tuple[Request, Result]], seconds: float) -> dict:
    ok = [(q, r) for q, r in results if r.error is None and r.num_tokens == q.max_tokens]
    lost = [r.error or f"{r.num_tokens} of {q.max_tokens} tokens" for q, r in results
            if (q, r) not in ok]
    ttfts = sorted(r.ttft_s for _, r in ok if r.ttft_s is not None)
    gaps = sorted(g for _, r in ok for g in r.gaps_s)
    num_tokens = sum(r.num_tokens for _, r in ok)
    return {
        "seconds": seconds, "num_requests": len(ok), "lost_requests": len(lost),
        "requests_per_s": len(ok) / seconds, "output_tokens_per_s": num_tokens / seconds,
        "ttft_p50_ms": 1e3 * percentile(ttfts, 50), "ttft_p99_ms": 1e3 * percentile(ttfts, 99),
        "itl_p50_ms": 1e3 * percentile(gaps, 50), "itl_p99_ms": 1e3 * percentile(gaps, 99),
        "_lost": lost[:10],
    }


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, round(q / 100 * (len(sorted_values) - 1)))
    return sorted_values[index]


def _timing(result: Result, start: float, last: float | None) -> float:
    now = time.perf_counter()
    if last is None:
        result.ttft_s = now - start
    else:
        result.gaps_s.append(now - last)
    return now


async def send_http(client, request: Request) -> Result:
    """One streaming /v1/completions request over `client` (an httpx.AsyncClient)."""
    body = {"model": "default", "prompt": request.prompt_ids, "max_tokens": request.max_tokens,
            "temperature": 0, "ignore_eos": True, "stream": True,
            "stream_options": {"include_usage": True}}
    result, start, last = Result(), time.perf_counter(), None
    async with client.stream("POST", "/v1/completions", json=body) as response:
        if response.status_code != 200:
            return Result(error=f"HTTP {response.status_code}: {(await response.aread())[:200]}")
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if "error" in chunk:
                return Result(error=chunk["error"]["message"])
            if chunk.get("usage"):
                result.num_tokens = chunk["usage"]["completion_tokens"]
            if any(c["text"] for c in chunk["choices"]):
                last = _timing(result, start, last)
    return result


async def send_engine(engine, request: Request) -> Result:
    params = {"max_new_tokens": request.max_tokens, "temperature": 0, "ignore_eos": True}
    result, start, last = Result(), time.perf_counter(), None
    async for delta in engine.generate_stream(request.prompt_ids, params):
        if delta.error:
            return Result(error=delta.error)
        result.num_tokens += len(delta.token_ids)
        if delta.text:
            last = _timing(result, start, last)
    return result


# -- the two systems ---------------------------------------------------------------------------
def run_server(args: argparse.Namespace, workload: list[list[Request]], log_path: Path) -> dict:
    import httpx

    port = _free_port()
    argv = [sys.executable, "-m", "sglc.runtime.server", "--port", str(port), "--log-level",
            "warning", "--max-in-flight", str(max(512, args.clients * 2)), "--dtype", "float32"]
    if args.model:
        argv += ["--model", args.model]
    if args.max_total_tokens is not None:
        argv += ["--max-total-tokens", str(args.max_total_tokens)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    with log_path.open("w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, proc, log_path)
        limits = httpx.Limits(max_connections=args.clients + 4)

        async def go() -> dict:
            async with httpx.AsyncClient(base_url=base, timeout=REQUEST_TIMEOUT_S,
                                         limits=limits) as client:
                await send_http(client, WARMUP)  # not measured
                return await run_clients(workload, args.time_limit,
                                         lambda request: send_http(client, request))

        return asyncio.run(go())
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def run_engine(args: argparse.Namespace, workload: list[list[Request]]) -> dict:
    import sglc

    async def go(engine) -> dict:
        await send_engine(engine, WARMUP)  # not measured
        return await run_clients(workload, args.time_limit,
                                 lambda request: send_engine(engine, request))

    with sglc.Engine(args.model, **engine_options(args)) as engine:
        return asyncio.run(go(engine))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(base: str, proc: subprocess.Popen, log_path: Path) -> None:
    import httpx

    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited:\n{log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the server did not start in {START_TIMEOUT_S} s")


def vocab_size(args: argparse.Namespace) -> int:
    from sglc.runtime.engine import default_model_path

    path = Path(args.model) if args.model else default_model_path()
    return json.loads((path / "config.json").read_text())["vocab_size"]


# -- main --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    common.set_threads(args.threads)
    env_start = common.environment()
    print(f"{env_start['date_utc']}  load avg {env_start['load_avg_1m']:.2f}")
    workload = make_workload(args, vocab_size(args))
    num_requests = sum(map(len, workload))
    print(f"workload: {args.clients} clients x {args.requests_per_client} streaming requests, "
          f"prompts {args.prompt_lens[0]}-{args.prompt_lens[1]} tokens, outputs "
          f"{args.output_lens[0]}-{args.output_lens[1]} tokens, greedy, ignore_eos, seed "
          f"{args.seed}; model {args.model or 'default (embedded)'}, fp32, {args.threads} "
          f"torch threads")
    common.OUT_DIR.mkdir(parents=True, exist_ok=True)
    log_path = common.OUT_DIR / f"{NAME}.server.log"
    systems = {"sglc serve (HTTP)": lambda rep: run_server(args, workload, log_path),
               "in-process engine": lambda rep: run_engine(args, workload)}
    results = common.interleave(systems, args.repeats)
    report = summarize(args, env_start, num_requests, results)
    out = common.write_json(NAME, report, args.out)
    print(f"\nwrote {out}")
    return report


KEYS = ["requests_per_s", "output_tokens_per_s", "ttft_p50_ms", "ttft_p99_ms", "itl_p50_ms",
        "itl_p99_ms", "lost_requests"]


def summarize(args, env_start, num_requests, results) -> dict:
    summary = {name: {k: common.median([r[k] for r in runs]) for k in KEYS}
               | {"runs": runs} for name, runs in results.items()}
    server, local = summary["sglc serve (HTTP)"], summary["in-process engine"]
    rows = [[name, *(s[k] for k in KEYS)] for name, s in summary.items()]
    rows.append(["ratio server / engine",
                 *(common.ratio(server[k], local[k]) for k in KEYS[:-1]), None])
    print(f"\n== {NAME}: {args.repeats} repeat(s), medians, {num_requests} requests ==")
    print(common.format_table(["system", "req/s", "out tok/s", "TTFT p50 ms", "TTFT p99 ms",
                               "ITL p50 ms", "ITL p99 ms", "lost"], rows))
    loss = 1 - (common.ratio(server["output_tokens_per_s"], local["output_tokens_per_s"]) or 0)
    print(f"server throughput loss vs in-process: {100 * loss:.1f}% (target <= 10% at 64 "
          f"clients)")
    return {"name": NAME, "args": {k: v for k, v in vars(args).items() if k != "out"},
            "environment": {"start": env_start, "end": common.environment()},
            "num_requests": num_requests, "throughput_loss": loss, "summary": summary}


if __name__ == "__main__":
    main()
