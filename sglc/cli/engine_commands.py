"""`sglc generate` and `sglc models`: the engine alone, without an SGL program."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sglc.cli.common import EXIT_OK, add_engine_options, engine_options

if TYPE_CHECKING:
    from sglc.runtime.engine import Engine


def add_commands(sub: Any) -> None:
    """Register generate and models on the `sglc` subparsers."""
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
    p.add_argument("--attention-sparsity", nargs=2, type=float,
                   metavar=("TOKEN_RATIO", "CHANNEL_RATIO"),
                   help="Double Sparsity at decode (needs --sparsity-calibration): attend to "
                   "TOKEN_RATIO of the context, picked by CHANNEL_RATIO of each head's channels")
    p.add_argument("--stream", action="store_true", help="print tokens as they are generated")
    p.add_argument("--json", action="store_true", help="print results as JSON lines")
    add_engine_options(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("models", help="list the embedded default model",
                       description="Show the embedded default model and its size.")
    p.set_defaults(func=cmd_models)


def make_engine(args: argparse.Namespace) -> Engine:
    # NOTE: the engine (and torch) load here, not when the CLI starts.
    from sglc.runtime.engine import Engine

    return Engine(args.model, **engine_options(args))


def _prompt(args: argparse.Namespace, text: str) -> str | list[dict[str, str]]:
    if not args.chat:
        return text
    messages = [{"role": "system", "content": args.system}] if args.system else []
    return messages + [{"role": "user", "content": text}]


def cmd_generate(args: argparse.Namespace) -> int:
    params = {"max_new_tokens": args.max_new_tokens, "temperature": args.temperature,
              "top_p": args.top_p, "top_k": args.top_k, "seed": args.seed, "stop": args.stop}
    if args.attention_sparsity is not None:
        params["attention_sparsity"] = tuple(args.attention_sparsity)
    prompts = [_prompt(args, t) for t in args.prompts]
    with make_engine(args) as engine:
        if args.stream:
            for prompt in prompts:
                asyncio.run(_stream(engine, prompt, params))
            return EXIT_OK
        for text, out in zip(args.prompts, engine.generate(prompts, params), strict=True):
            if args.json:
                print(json.dumps({"prompt": text, "text": out.text, "finish_reason":
                                  out.finish_reason.value, "usage": vars(out.usage)}))
            else:
                print(out.text)
    return EXIT_OK


async def _stream(engine: Engine, prompt: str | list[dict[str, str]], params: dict) -> None:
    async for delta in engine.generate_stream(prompt, params):
        sys.stdout.write(delta.text)
        sys.stdout.flush()
    sys.stdout.write("\n")


def cmd_models(args: argparse.Namespace) -> int:
    # NOTE: the engine's modules (and torch) load here, not when the CLI starts.
    from sglc.runtime.engine import default_model_path
    from sglc.runtime.models.loader import read_hf_config

    path = default_model_path()
    cfg = read_hf_config(path)
    size = sum(f.stat().st_size for f in Path(path).glob("*.safetensors"))
    print(f"default  {cfg.get('architectures', ['?'])[0]}  layers={cfg.get('num_hidden_layers')} "
          f"hidden={cfg.get('hidden_size')} vocab={cfg.get('vocab_size')}  "
          f"{size / 1e6:.1f} MB  {path}")
    return EXIT_OK
