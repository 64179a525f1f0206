"""The `serve` command: `sglc serve [--model PATH] [--host 127.0.0.1] [--port 30000]
[--api-key KEY] [server limits] [engine options]`, or `python -m sglc.runtime.server ...`.

`add_serve_command(subparsers)` adds it to the `sglc` parser; `run_server(args)` runs it
until Ctrl-C or SIGTERM and returns the exit code. Failures at start (bad option, missing
model, a `--program` that does not compile, port in use) are one `sglc: error:` line.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from pathlib import Path
from typing import Any

API_KEY_ENV = "SGLC_API_KEY"
log = logging.getLogger("sglc.serve")


def add_serve_command(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "serve", help="serve the engine over HTTP (OpenAI-compatible and native API)",
        description="Serve a model with the sglc engine behind an OpenAI-compatible HTTP API "
                    "(/v1/completions, /v1/chat/completions, /v1/models), native /generate "
                    "and /score, SGL programs (/v1/programs/run), /health and /metrics.",
    )
    add_serve_arguments(p)
    p.set_defaults(func=run_server)
    return p


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="PATH", help="a local Hugging Face model directory "
                   "(default: the embedded default model)")
    p.add_argument("--served-model-name", metavar="NAME",
                   help="the model id clients send (default: 'default', or --model as given)")
    net = p.add_argument_group("network")
    net.add_argument("--host", default="127.0.0.1",
                     help="address to bind (default: 127.0.0.1, this machine only)")
    net.add_argument("--port", type=int, default=30000, help="port (default: 30000)")
    net.add_argument("--api-key", metavar="KEY", default=os.environ.get(API_KEY_ENV),
                     help=f"require `Authorization: Bearer KEY` on every route but /health "
                          f"(default: ${API_KEY_ENV} when set)")
    net.add_argument("--log-level", default="info",
                     choices=["critical", "error", "warning", "info", "debug"])
    limits = p.add_argument_group("server limits")
    limits.add_argument("--max-body-bytes", type=int, default=4 << 20, metavar="N",
                        help="largest request body; larger gets 413 (default: 4 MiB)")
    limits.add_argument("--max-n", type=int, default=16, metavar="N",
                        help="most samples per prompt (default: 16)")
    limits.add_argument("--max-prompts", type=int, default=64, metavar="N",
                        help="most prompts in one request (default: 64)")
    limits.add_argument("--max-tokens", type=int, default=None, metavar="N",
                        help="most generated tokens per sample (default: the context length)")
    limits.add_argument("--max-in-flight", type=int, default=512, metavar="N",
                        help="sequences (prompts x n) admitted at once; more get 503 "
                             "(default: 512)")
    limits.add_argument("--max-logprobs", type=int, default=20, metavar="N",
                        help="most top logprobs per token (default: 20)")
    progs = p.add_argument_group("programs")
    progs.add_argument("--program", action="append", default=[], metavar="FILE",
                       help="register an .sgl program, run by its file name's stem "
                            "(repeatable)")
    progs.add_argument("--disable-program-upload", action="store_true",
                       help="run registered programs only, never source sent in a request")
    progs.add_argument("--program-timeout", type=float, default=300.0, metavar="SECONDS",
                       help="stop a program run after this long (default: 300)")
    progs.add_argument("--max-program-runs", type=int, default=4, metavar="N",
                       help="programs running at once; more get 503 (default: 4)")
    add_engine_arguments(p.add_argument_group("engine"))


def add_engine_arguments(p: Any) -> None:
    """Every EngineConfig option as a flag (None defaults: the engine's own default)."""
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: cpu)")
    p.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16")
    p.add_argument("--max-total-tokens", type=int, metavar="N", help="KV pool size in tokens")
    p.add_argument("--max-running-requests", type=int, metavar="N",
                   help="sequences in the running batch (default: 256)")
    p.add_argument("--max-context-len", type=int, metavar="N",
                   help="context length (default: the model's)")
    p.add_argument("--page-size", type=int, metavar="N", help="KV page size (default: 1)")
    p.add_argument("--policy", help="scheduling policy: lpm (default, cache-aware) or fcfs")
    p.add_argument("--chunked-prefill-size", type=int, metavar="N",
                   help="prefill chunk in tokens, 0 = off (default: 2048)")
    p.add_argument("--max-prefill-tokens", type=int, metavar="N",
                   help="token budget of one prefill batch (default: 16384)")
    p.add_argument("--disable-radix-cache", action="store_true", help="turn prefix caching off")
    p.add_argument("--disable-jump-forward", action="store_true",
                   help="constrained decoding without jump-forward")
    p.add_argument("--attention-backend", choices=["torch", "triton", "cpu"],
                   help="kernel backend (default: triton on CUDA; on CPU, cpu where its C++ "
                        "kernels build, else torch)")
    p.add_argument("--seed", type=int, help="the engine's seed for requests without one")
    p.add_argument("--index-cache-dir", metavar="DIR",
                   help="where constraint automata are cached (default: ~/.cache/sglc)")


def engine_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"device": args.device, "dtype": args.dtype}
    for name in ("max_total_tokens", "max_running_requests", "max_context_len", "page_size",
                 "policy", "chunked_prefill_size", "max_prefill_tokens", "attention_backend",
                 "seed", "index_cache_dir"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if args.disable_radix_cache:
        options["disable_radix_cache"] = True
    if args.disable_jump_forward:
        options["enable_jump_forward"] = False
    return options


def server_config(args: argparse.Namespace) -> Any:
    from sglc.runtime.server.config import ServerConfig

    programs: dict[str, Path] = {}
    for file in args.program:
        path = Path(file)
        if path.stem in programs:
            raise ValueError(f"two --program files are named '{path.stem}'")
        if not path.is_file():
            raise ValueError(f"--program {file}: no such file")
        programs[path.stem] = path
    name = args.served_model_name or args.model or "default"
    return ServerConfig(
        model_name=name, api_key=args.api_key, max_body_bytes=args.max_body_bytes,
        max_n=args.max_n, max_prompts=args.max_prompts, max_tokens=args.max_tokens,
        max_in_flight=args.max_in_flight, max_logprobs=args.max_logprobs, programs=programs,
        allow_program_upload=not args.disable_program_upload,
        program_timeout_s=args.program_timeout, max_program_runs=args.max_program_runs,
    )


def run_server(args: argparse.Namespace) -> int:
    """Load the engine, serve until stopped, shut the engine down."""
    import uvicorn

    import sglc
    from sglc.runtime.core import EngineError
    from sglc.runtime.server.app import create_app
    from sglc.runtime.server.programs import load_registered

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        config = server_config(args)
        load_registered(config.programs)  # a broken --program fails before the model loads
        engine = sglc.Engine(args.model, **engine_options(args))
    except sglc.CompileError as exc:
        print(f"sglc: error: a --program does not compile:\n{exc}", file=sys.stderr)
        return 1
    except (EngineError, ValueError, OSError) as exc:
        print(f"sglc: error: {exc}", file=sys.stderr)
        return 1
    try:
        app = create_app(engine, config, owns_engine=True)
        if config.api_key is None and not _is_loopback(args.host):
            log.warning("serving on %s without --api-key: anyone who can reach this address "
                        "can use the model", args.host)
        log.info("serving '%s' on http://%s:%d%s", config.model_name, args.host, args.port,
                 " (API key required)" if config.api_key else "")
        server = uvicorn.Server(uvicorn.Config(
            app, host=args.host, port=args.port, log_level=args.log_level,
            timeout_graceful_shutdown=5))
        server.run()
        return 0 if server.started else 1
    finally:
        engine.shutdown()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sglc.runtime.server",
                                     description="The sglc server (the same as `sglc serve`).")
    add_serve_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_server(args)
    except KeyboardInterrupt:
        return 130
