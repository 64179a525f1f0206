"""Serving load: N concurrent streaming clients against `sglc serve` on loopback, and the
same clients against the in-process engine, to show what the HTTP server costs.

Each of `--clients` clients sends `--requests-per-client` streaming /v1/completions requests
back to back (closed loop): seeded random token-id prompts of mixed lengths, mixed output
lengths, `ignore_eos`, greedy, over `--client` (aiohttp by default: its C HTTP parser keeps
the load generator's CPU, which shares the machine's cores with the server, small). The in-process side runs the same clients as asyncio tasks
over `Engine.generate_stream`. Both stop starting requests after `--time-limit` seconds.
Reported per system (median over repeats): requests/s, output tokens/s, time to first
token and inter-token latency p50/p99 (gaps between streamed text chunks, pooled), and lost
requests (errors, or fewer tokens than asked), which must be 0, and the CPU time per output
token of each side (server process + client process; the engine's one process) with the
client's share apart, so the load generator's own cost is visible. The server runs in a
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
    p.add_argument("--client", choices=("aiohttp", "httpx"), default="aiohttp",
                   help="HTTP client library of the load generator (default aiohttp)")
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


def completion_body(request: Request) -> dict:
    return {"model": "default", "prompt": request.prompt_ids, "max_tokens": request.max_tokens,
            "temperature": 0, "ignore_eos": True, "stream": True,
            "stream_options": {"include_usage": True}}


def _on_event(result: Result, data: bytes | str, start: float, last: float | None
              ) -> tuple[bool, float | None]:
    """One SSE `data:` payload into `result`; (whether the stream failed, time of last text)."""
    chunk = json.loads(data)
    if "error" in chunk:
        result.error = chunk["error"]["message"]
        return True, last
    if chunk.get("usage"):
        result.num_tokens = chunk["usage"]["completion_tokens"]
    if any(c["text"] for c in chunk["choices"]):
        last = _timing(result, start, last)
    return False, last


async def send_httpx(client, request: Request) -> Result:
    """One streaming /v1/completions request over `client` (an httpx.AsyncClient)."""
    result, start, last = Result(), time.perf_counter(), None
    async with client.stream("POST", "/v1/completions", json=completion_body(request)) as response:
        if response.status_code != 200:
            return Result(error=f"HTTP {response.status_code}: {(await response.aread())[:200]}")
        async for line in response.aiter_lines():
            if line.startswith("data: {"):
                failed, last = _on_event(result, line[6:], start, last)
                if failed:
                    return Result(error=result.error)
    return result


async def send_aiohttp(session, base: str, request: Request) -> Result:
    """One streaming /v1/completions request over `session` (an aiohttp.ClientSession)."""
    result, start, last = Result(), time.perf_counter(), None
    async with session.post(f"{base}/v1/completions", json=completion_body(request)) as response:
        if response.status != 200:
            return Result(error=f"HTTP {response.status}: {(await response.read())[:200]}")
        async for line in response.content:  # one line at a time
            if line.startswith(b"data: {"):
                failed, last = _on_event(result, line[6:], start, last)
                if failed:
                    return Result(error=result.error)
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

        async def measured(send) -> dict:
            await send(WARMUP)  # not measured
            server_cpu, client_cpu = _process_cpu_s(proc.pid), time.process_time()
            result = await run_clients(workload, args.time_limit, send)
            return with_cpu(result, _process_cpu_s(proc.pid) - server_cpu,
                            time.process_time() - client_cpu)

        return asyncio.run(_with_client(args, base, measured))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


async def _with_client(args: argparse.Namespace, base: str, measured) -> dict:
    """`measured(send)` with `send(request)` streaming over `args.client`'s library."""
    if args.client == "aiohttp":
        import aiohttp

        connector = aiohttp.TCPConnector(limit=args.clients + 4)
        async with aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as session:
            return await measured(lambda request: send_aiohttp(session, base, request))
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=REQUEST_TIMEOUT_S,
                                 limits=httpx.Limits(max_connections=args.clients + 4)) as client:
        return await measured(lambda request: send_httpx(client, request))


def with_cpu(result: dict, cpu_s: float, client_cpu_s: float) -> dict:
    """`result` with CPU time per output token: all processes, and the client's share."""
    tokens = result["output_tokens_per_s"] * result["seconds"]
    per_token = (lambda seconds: 1e6 * seconds / tokens) if tokens else (lambda _: float("nan"))
    return result | {"cpu_us_per_token": per_token(cpu_s + client_cpu_s),
                     "client_cpu_us_per_token": per_token(client_cpu_s)}


def _process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_engine(args: argparse.Namespace, workload: list[list[Request]]) -> dict:
    import sglc

    async def go(engine) -> dict:
        send = lambda request: send_engine(engine, request)  # noqa: E731
        await send(WARMUP)  # not measured
        cpu = time.process_time()
        result = await run_clients(workload, args.time_limit, send)
        return with_cpu(result, time.process_time() - cpu, 0.0)

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
    env_start = common.begin(args.threads)
    workload = make_workload(args, vocab_size(args))
    num_requests = sum(map(len, workload))
    print(f"workload: {args.clients} clients x {args.requests_per_client} streaming requests, "
          f"prompts {args.prompt_lens[0]}-{args.prompt_lens[1]} tokens, outputs "
          f"{args.output_lens[0]}-{args.output_lens[1]} tokens, greedy, ignore_eos, seed "
          f"{args.seed}; model {args.model or 'default (embedded)'}, fp32, {args.threads} "
          f"torch threads; {args.client} client")
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
        "itl_p99_ms", "cpu_us_per_token", "client_cpu_us_per_token", "lost_requests"]


def summarize(args, env_start, num_requests, results) -> dict:
    summary = {name: {k: common.median([r[k] for r in runs]) for k in KEYS}
               | {"runs": runs} for name, runs in results.items()}
    server, local = summary["sglc serve (HTTP)"], summary["in-process engine"]
    rows = [[name, *(s[k] for k in KEYS)] for name, s in summary.items()]
    rows.append(["ratio server / engine",
                 *(common.ratio(server[k], local[k]) for k in KEYS[:-1]), None])
    print(f"\n== {NAME}: {args.repeats} repeat(s), medians, {num_requests} requests ==")
    print(common.format_table(["system", "req/s", "out tok/s", "TTFT p50 ms", "TTFT p99 ms",
                               "ITL p50 ms", "ITL p99 ms", "CPU us/tok", "client CPU us/tok",
                               "lost"], rows))
    loss = 1 - (common.ratio(server["output_tokens_per_s"], local["output_tokens_per_s"]) or 0)
    print(f"server throughput loss vs in-process: {100 * loss:.1f}% (target <= 10% at 64 "
          f"clients)")
    return {"name": NAME, "args": {k: v for k, v in vars(args).items() if k != "out"},
            "environment": {"start": env_start, "end": common.environment()},
            "num_requests": num_requests, "throughput_loss": loss, "summary": summary}


if __name__ == "__main__":
    main()
