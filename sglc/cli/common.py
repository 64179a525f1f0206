"""What every `sglc` command shares: exit codes, usage errors, the engine options, and
where `sglc run` runs a program (an in-process engine, or `--endpoint URL`)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from sglc.runtime.backends import Runtime
from sglc.runtime.mux import MuxConfig

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
KERNEL_BACKENDS = ("torch", "triton", "cpu")


class UsageError(Exception):
    """Bad command-line arguments (exit 2)."""


def add_engine_options(p: argparse.ArgumentParser | argparse._ArgumentGroup,
                       with_endpoint: bool = False, several_models: bool = False) -> None:
    """The flags of the commands that run a model (`run`, `generate`, `serve`): `--model`
    (repeatable, NAME=PATH, with `several_models`) and every EngineConfig option (unset:
    the engine's own default)."""
    p.add_argument("--model", metavar="[NAME=]PATH" if several_models else "PATH",
                   action="append" if several_models else "store",
                   help="a local Hugging Face model directory "
                   "(default: the embedded default model)" + (
                       "; NAME=PATH adds a model the program picks by name (gen "
                       "x(model=\"NAME\"), fn ... with model=\"NAME\"); repeatable, one "
                       "engine each; the first is the default unless a plain PATH is given"
                       if several_models else "") + (
                       "; with --endpoint, the id of a model the endpoint serves (default: "
                       "its first)" if with_endpoint else ""))
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: cpu)")
    p.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16")
    p.add_argument("--max-total-tokens", type=int, metavar="N", help="KV pool size in tokens")
    p.add_argument("--max-running-requests", type=int, metavar="N",
                   help="sequences in the running batch (default: 256)")
    p.add_argument("--max-context-len", type=int, metavar="N",
                   help="context length (default: the model's)")
    p.add_argument("--page-size", type=int, metavar="N", help="KV page size (default: 1)")
    p.add_argument("--policy", choices=["lpm", "fcfs", "vtc", "dlpm"],
                   help="scheduling policy: lpm (default, cache-aware), fcfs, vtc (fair "
                        "between clients) or dlpm (fair and cache-aware)")
    p.add_argument("--client-weight", dest="client_weights", action="append", default=None,
                   metavar="CLIENT=W", help="vtc/dlpm: a client's share weight (default 1; "
                   "repeatable)")
    p.add_argument("--fair-token-weights", nargs=2, type=float, metavar=("IN", "OUT"),
                   help="vtc/dlpm: service per prompt and per generated token (default: 1 2)")
    p.add_argument("--dlpm-quantum", type=float, metavar="W",
                   help="dlpm: service a waiting client may take per round (default: 2048)")
    p.add_argument("--kv-policy", choices=["exact", "h2o", "window"],
                   help="KV eviction: exact (default, keep all), h2o (heavy hitters + recent) "
                        "or window (attention sinks + recent), to --kv-budget tokens a request")
    p.add_argument("--kv-budget", type=int, metavar="N",
                   help="h2o/window: KV tokens kept per request")
    p.add_argument("--kv-sink-tokens", type=int, metavar="N",
                   help="window: first tokens always kept (default: 4)")
    p.add_argument("--kv-recent-ratio", type=float, metavar="R",
                   help="h2o: share of the budget kept as the most recent tokens (default: 0.5)")
    p.add_argument("--kv-cache-dtype", choices=["auto", "int8", "int4"],
                   help="KV cache storage: auto (the model's dtype, default), or int8 / int4 "
                        "group-wise quantized (FlexGen)")
    p.add_argument("--quantization", choices=["int8", "int4"],
                   help="weight-only quantization of the attention and MLP projections at "
                        "load time, group-wise (default: none)")
    p.add_argument("--sparsity-calibration", metavar="PATH",
                   help="Double Sparsity: serve requests with attention_sparsity, from the "
                        "outlier channels `sglc calibrate` wrote (auto: the file next to the "
                        "model; default: off)")
    p.add_argument("--sparsity-label-ratio", type=float, metavar="R",
                   help="Double Sparsity: share of each KV head's channels the label cache "
                        "keeps, the largest channel_ratio a request may ask (default: 0.25)")
    p.add_argument("--sparsity-min-tokens", type=int, metavar="N",
                   help="Double Sparsity: tokens a sparse request attends to at least "
                        "(default: 16)")
    p.add_argument("--max-device-memory", metavar="SIZE",
                   help="offloading: bytes (or 2GiB, 512MB...) the tensors computed from may "
                        "take (on CPU: the resident weights and KV); the rest streams from host "
                        "memory or the mapped checkpoint, placed by FlexGen's policy search")
    p.add_argument("--max-host-memory", metavar="SIZE",
                   help="offloading: RAM for weight and KV copies streamed to the device "
                        "(default: none on CPU, the available RAM on CUDA)")
    p.add_argument("--offload-dir", metavar="DIR",
                   help="offloading: where KV layers placed on disk live (default: the temp dir)")
    p.add_argument("--track-client-service", action="store_true",
                   help="count per-client service under fcfs and lpm too (engine stats)")
    p.add_argument("--lora", dest="lora_paths", action="append", default=None,
                   metavar="NAME=PATH", help="serve a PEFT LoRA adapter under NAME (repeatable)")
    p.add_argument("--max-loras-per-batch", type=int, metavar="N",
                   help="distinct LoRA adapters in one batch: the adapter pool's slots "
                        "(default: 8)")
    p.add_argument("--max-lora-rank", type=int, metavar="N",
                   help="the adapter pool's rank (default: the largest adapter's)")
    p.add_argument("--chunked-prefill-size", type=int, metavar="N",
                   help="prefill chunk in tokens, 0 = off (default: 2048)")
    p.add_argument("--max-prefill-tokens", type=int, metavar="N",
                   help="token budget of one prefill batch (default: 16384)")
    p.add_argument("--disable-radix-cache", action="store_true", help="turn prefix caching off")
    p.add_argument("--disable-jump-forward", action="store_true",
                   help="constrained decoding without jump-forward")
    p.add_argument("--kernel-backend", "--attention-backend", dest="kernel_backend",
                   choices=KERNEL_BACKENDS, default=None,
                   help="kernel backend for every op (default: triton on CUDA; on CPU, cpu "
                        "where its C++ kernels build, else torch, the PyTorch reference ops); "
                        "--attention-backend is its former name")
    p.add_argument("--tp", dest="tp_size", type=int, metavar="N",
                   help="tensor parallelism: shard the model over N processes (gloo on CPU, "
                        "nccl on N GPUs from --device's; default: 1)")
    p.add_argument("--dp", dest="dp_size", type=int, metavar="N",
                   help="data parallelism: N engine replicas in processes behind a "
                        "cache-aware router (default: 1)")
    p.add_argument("--dp-router", choices=["cache_aware", "round_robin"],
                   help="--dp: route by the longest cached prefix (default), or in turn")
    p.add_argument("--dp-balance-threshold", type=int, metavar="N",
                   help="--dp: route to the least loaded replica when loads differ by more "
                        "than N requests (default: 32)")
    p.add_argument("--engine-seed", dest="engine_seed", type=int, metavar="N",
                   help="the engine's seed for requests without one (default: 0)")
    p.add_argument("--index-cache-dir", metavar="DIR",
                   help="where constraint automata are cached (default: ~/.cache/sglc)")
    p.add_argument("--response-cache", metavar="PATH",
                   help="answer repeated deterministic requests (greedy, or seeded) from "
                        "this SQLite file (default: off)")
    p.add_argument("--response-cache-max-bytes", type=int, metavar="N",
                   help="bytes the response cache's entries may take (default: 256 MiB)")
    p.add_argument("--response-cache-policy", choices=["lru", "lec", "gdsf"],
                   help="response cache eviction: gdsf (default), lec or lru")
    p.add_argument("--response-cache-cost", choices=["flops", "latency"],
                   help="what an answer costs for gdsf/lec: flops (estimated, default) or "
                        "latency (measured)")


_PASSED_WHEN_SET = ("max_total_tokens", "max_running_requests", "max_context_len", "page_size",
                    "policy", "chunked_prefill_size", "max_prefill_tokens", "kernel_backend",
                    "index_cache_dir", "dlpm_quantum", "max_loras_per_batch", "max_lora_rank",
                    "kv_policy", "kv_budget", "kv_sink_tokens", "kv_recent_ratio",
                    "tp_size", "dp_size", "dp_router", "dp_balance_threshold",
                    "response_cache", "response_cache_max_bytes", "response_cache_policy",
                    "response_cache_cost", "kv_cache_dtype", "quantization",
                    "sparsity_calibration", "sparsity_label_ratio", "sparsity_min_tokens",
                    "max_device_memory", "max_host_memory", "offload_dir")


def engine_options(args: argparse.Namespace) -> dict[str, Any]:
    """`sglc.Engine(...)` options from the engine flags, after checking `--device`."""
    check_device(args.device)
    options: dict[str, Any] = {"device": args.device, "dtype": args.dtype}
    options.update({name: getattr(args, name) for name in _PASSED_WHEN_SET
                    if getattr(args, name) is not None})
    if args.engine_seed is not None:
        options["seed"] = args.engine_seed
    if args.disable_radix_cache:
        options["disable_radix_cache"] = True
    if args.disable_jump_forward:
        options["enable_jump_forward"] = False
    if args.track_client_service:
        options["track_client_service"] = True
    if args.fair_token_weights is not None:
        options["fair_token_weights"] = tuple(args.fair_token_weights)
    if args.client_weights:
        options["client_weights"] = {k: _number(v, "--client-weight") for k, v in
                                     _pairs(args.client_weights, "--client-weight").items()}
    if args.lora_paths:
        options["lora_paths"] = _pairs(args.lora_paths, "--lora")
    return options


API_KEY_ENV = "SGLC_API_KEY"


def add_endpoint_options(p: argparse.ArgumentParser) -> None:
    """`--endpoint URL` and its options: run on a remote server instead of in process."""
    g = p.add_argument_group(
        "remote endpoint", "run the program's model calls on a server: `sglc serve`, or any "
        "OpenAI-compatible one (vLLM, SGLang, ...); the engine options then do not apply")
    g.add_argument("--endpoint", metavar="URL",
                   help="the server's base URL, e.g. http://127.0.0.1:30000 (a trailing /v1 "
                        "is fine)")
    g.add_argument("--api-key", metavar="KEY", default=os.environ.get(API_KEY_ENV),
                   help=f"sent as `Authorization: Bearer KEY` (default: ${API_KEY_ENV} when set)")
    g.add_argument("--tokenizer", metavar="PATH",
                   help="a local copy of the served model's tokenizer (a directory or a "
                        "Hugging Face name); needed where the server has no GET /tokenizer "
                        "(sglc serve has)")
    g.add_argument("--api", choices=["auto", "sglc", "openai"], default="auto",
                   help="sglc: native /generate and /score; openai: /v1/completions only "
                        "(default: auto, sglc when the server is sglc serve)")
    g.add_argument("--request-timeout", type=float, default=600.0, metavar="SECONDS",
                   help="fail a request when the server sends nothing for this long "
                        "(default: 600)")
    g.add_argument("--max-in-flight", type=int, default=64, metavar="N",
                   help="HTTP requests on the wire at once (default: 64)")
    g.add_argument("--max-retries", type=int, default=4, metavar="N",
                   help="retries of a request answered 429/502/503/504 or not reached, with "
                        "backoff (default: 4)")


def make_runtime(args: argparse.Namespace, mux: MuxConfig | None = None) -> Runtime:
    """Where `sglc run` runs: `--endpoint`, else an in-process engine from the engine flags
    (and `mux`, the multiplexer of `model="auto"`)."""
    if args.endpoint is None:
        if args.tokenizer is not None:
            raise UsageError("--tokenizer is for --endpoint; an in-process model brings its own")
        path, named = split_models(args.model)
        return Runtime(model_path=path, models=named or None, mux=mux,
                       **engine_options(args))
    if mux is not None:
        raise UsageError("--mux and --mux-log multiplex in-process models (--model "
                         "NAME=PATH); an --endpoint serves one")
    if isinstance(args.model, list):  # --endpoint serves one model: its id
        if len(args.model) > 1:
            raise UsageError("--endpoint runs on one model: give --model once (its id)")
        args.model = args.model[0]
    set_flags = [flag for flag, is_set in _engine_flags(args) if is_set]
    if set_flags:
        raise UsageError(f"{set_flags[0]} configures an in-process engine; with --endpoint "
                         "the server's own engine options apply")
    return Runtime(endpoint=args.endpoint, api_key=args.api_key, model=args.model,
                   tokenizer=args.tokenizer, api=args.api, timeout_s=args.request_timeout,
                   max_in_flight=args.max_in_flight, max_retries=args.max_retries)


def _engine_flags(args: argparse.Namespace) -> list[tuple[str, bool]]:
    flags = [(f"--{name.replace('_', '-')}", getattr(args, name) is not None)
             for name in (*_PASSED_WHEN_SET, "engine_seed")]
    return [("--device", args.device != "cpu"), ("--dtype", args.dtype != "auto"), *flags,
            ("--disable-radix-cache", args.disable_radix_cache),
            ("--disable-jump-forward", args.disable_jump_forward)]


def split_models(values: list[str] | str | None) -> tuple[str | None, dict[str, str]]:
    """`--model` values: the one plain PATH (the default model; None: the embedded one)
    and the NAME=PATH ones, by name (UsageError for two plain paths or a name twice)."""
    if values is None or isinstance(values, str):
        return values, {}
    plain: list[str] = []
    named: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name.isidentifier():
            plain.append(value)
        elif not path:
            raise UsageError(f"--model {value!r}: give NAME=PATH")
        elif name in named:
            raise UsageError(f"--model: the name {name!r} is given twice")
        else:
            named[name] = path
    if len(plain) > 1:
        raise UsageError(f"--model: {len(plain)} paths without a name ({', '.join(plain)}); "
                         "name all but the default one: --model NAME=PATH")
    return (plain[0] if plain else None), named


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    """NAME=VALUE flags as a dict (UsageError naming the flag otherwise)."""
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise UsageError(f"{flag} takes NAME=VALUE, got {item!r}")
        pairs[name] = value
    return pairs


def _number(text: str, flag: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"{flag}: {text!r} is not a number") from None


def check_device(device: str) -> None:
    """A `--device` that torch knows (else UsageError) and this machine has (else
    InvalidRequest), so a wrong one is one line, not an error deep inside torch."""
    # NOTE: torch loads here, when a command is about to run a model: `sglc --help`,
    # `sglc check` and `sglc compile` never load it.
    import torch

    from sglc.runtime.engine.build import check_device_available

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {device!r} is not a device; use cpu or cuda[:N]") from None
    check_device_available(dev, f"--device {device}", "--device")
