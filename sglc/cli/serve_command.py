"""`sglc serve [--model PATH] [--host 127.0.0.1] [--port 30000] [--api-key KEY] [server
limits] [engine options]`; `python -m sglc.runtime.server ...` runs the same command.

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

from sglc.cli.common import add_engine_options, engine_options

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
    add_engine_options(p.add_argument_group("engine"))


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
