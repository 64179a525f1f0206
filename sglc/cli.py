"""The `sglc` command line.

Every user-facing failure (bad arguments, missing model, invalid request) ends in a
one-line `sglc: error: ...` message and exit code 1 or 2, never a Python traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

EPILOG = "Run `sglc COMMAND --help` for the options of one command."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sglc",
        description="sglc: a compiler and runtime for structured language-model programs.",
        epilog=EPILOG,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from sglc.cli_run import add_program_commands

    add_program_commands(sub)
    _add_generate(sub)
    _add_models(sub)
    return parser


def add_engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="PATH", help="a local Hugging Face model directory "
                   "(default: the embedded default model)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: cpu)")
    p.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16")
    p.add_argument("--max-total-tokens", type=int, metavar="N", help="KV pool size in tokens")
    p.add_argument("--policy", default="lpm", choices=["lpm", "fcfs"], help="scheduling policy")
    p.add_argument("--disable-radix-cache", action="store_true", help="turn prefix caching off")
    p.add_argument("--attention-backend", choices=["torch", "triton", "cpu"], default=None,
                   help="kernel backend (default: triton on CUDA; on CPU, cpu where its C++ "
                        "kernels build, else torch, the PyTorch reference ops)")


def _add_generate(sub: Any) -> None:
    p = sub.add_parser(
        "generate", help="generate text for one or more prompts",
        description="Generate a completion for each prompt with the sglc engine.",
    )
    p.add_argument("prompts", nargs="+", metavar="PROMPT", help="prompt text (several run batched)")
    p.add_argument("--chat", action="store_true",
                   help="send each prompt as a user message through the chat template")
    p.add_argument("--system", metavar="TEXT", help="a system message (with --chat)")
    p.add_argument("--max-new-tokens", type=int, default=64, metavar="N")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--stop", action="append", default=[], metavar="TEXT",
                   help="stop string (repeatable)")
    p.add_argument("--stream", action="store_true", help="print tokens as they are generated")
    p.add_argument("--json", action="store_true", help="print results as JSON lines")
    add_engine_options(p)
    p.set_defaults(func=cmd_generate)


def _add_models(sub: Any) -> None:
    p = sub.add_parser("models", help="list the embedded default model",
                       description="Show the embedded default model and its size.")
    p.set_defaults(func=cmd_models)


def make_engine(args: argparse.Namespace):
    from sglc.runtime.engine import Engine

    options = {"device": args.device, "dtype": args.dtype, "policy": args.policy,
               "disable_radix_cache": args.disable_radix_cache,
               "attention_backend": args.attention_backend}
    if args.max_total_tokens is not None:
        options["max_total_tokens"] = args.max_total_tokens
    return Engine(args.model, **options)


def _prompt(args: argparse.Namespace, text: str) -> Any:
    if not args.chat:
        return text
    messages = [{"role": "system", "content": args.system}] if args.system else []
    return messages + [{"role": "user", "content": text}]


def cmd_generate(args: argparse.Namespace) -> int:
    params = {"max_new_tokens": args.max_new_tokens, "temperature": args.temperature,
              "top_p": args.top_p, "top_k": args.top_k, "seed": args.seed, "stop": args.stop}
    prompts = [_prompt(args, t) for t in args.prompts]
    with make_engine(args) as engine:
        if args.stream:
            for prompt in prompts:
                asyncio.run(_stream(engine, prompt, params))
            return 0
        for text, out in zip(args.prompts, engine.generate(prompts, params), strict=True):
            if args.json:
                print(json.dumps({"prompt": text, "text": out.text, "finish_reason":
                                  out.finish_reason.value, "usage": vars(out.usage)}))
            else:
                print(out.text)
    return 0


async def _stream(engine: Any, prompt: Any, params: dict) -> None:
    async for delta in engine.generate_stream(prompt, params):
        sys.stdout.write(delta.text)
        sys.stdout.flush()
    sys.stdout.write("\n")


def cmd_models(args: argparse.Namespace) -> int:
    from sglc.runtime.engine import default_model_path
    from sglc.runtime.models.loader import read_hf_config

    path = default_model_path()
    cfg = read_hf_config(path)
    size = sum(f.stat().st_size for f in Path(path).glob("*.safetensors"))
    print(f"default  {cfg.get('architectures', ['?'])[0]}  layers={cfg.get('num_hidden_layers')} "
          f"hidden={cfg.get('hidden_size')} vocab={cfg.get('vocab_size')}  "
          f"{size / 1e6:.1f} MB  {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from sglc.runtime.core import EngineError

    try:
        return args.func(args)
    except EngineError as exc:
        print(f"sglc: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
