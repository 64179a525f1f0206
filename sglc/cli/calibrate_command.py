"""`sglc calibrate`: Double Sparsity's offline step, each layer's and KV head's outlier
channels written next to the model (sglc.runtime.sparsity)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sglc.cli.common import EXIT_OK, UsageError

DEFAULT_TOKENS = 512


def add_commands(sub: Any) -> None:
    """Register calibrate on the `sglc` subparsers."""
    p = sub.add_parser(
        "calibrate", help="find a model's outlier attention channels (Double Sparsity)",
        description="Run a few hundred tokens through the model and rank each layer's and KV "
        "head's channels by their share of the q.k products. The file it writes lets "
        "requests decode with attention_sparsity=(token_ratio, channel_ratio) on an engine "
        "started with sparsity_calibration (\"auto\": the file next to the model).",
    )
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="a local Hugging Face model directory (default: the embedded "
                   "default model)")
    p.add_argument("--text", metavar="FILE",
                   help="calibration text (default: the embedded model's own training "
                   "conversations; required for other models)")
    p.add_argument("--tokens", type=int, default=DEFAULT_TOKENS, metavar="N",
                   help=f"calibration tokens (default: {DEFAULT_TOKENS})")
    p.add_argument("--out", metavar="PATH",
                   help="where to write the file (default: MODEL/double_sparsity.json)")
    p.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args: argparse.Namespace) -> int:
    if args.tokens < 1:
        raise UsageError(f"--tokens must be >= 1, got {args.tokens}")
    # NOTE: the engine's modules (and torch) load here, not when the CLI starts.
    from sglc.runtime.engine import default_model_path
    from sglc.runtime.models.loader import load_model_info
    from sglc.runtime.sparsity.calibrate import calibrate, default_model_tokens
    from sglc.runtime.sparsity.calibration import CALIBRATION_FILE

    default = default_model_path()
    path = Path(args.model) if args.model else default
    _, tokenizer, _ = load_model_info(path)  # a missing model directory fails here
    out = Path(args.out) if args.out else path / CALIBRATION_FILE
    is_default = path.resolve() == default.resolve()
    if args.text is None and not is_default:
        raise UsageError(f"{path} is not the embedded default model: give calibration text "
                         "with --text FILE")
    if tokenizer is None:
        raise UsageError(f"{path} has no tokenizer to encode the calibration text with")
    if args.text is not None:
        text = Path(args.text).read_text(encoding="utf-8")
        ids = tokenizer.encode(text, add_special_tokens=False)[: args.tokens]
        data = f"text file {args.text}"
    else:
        ids = default_model_tokens(tokenizer, args.tokens)
        data = "the default model's training conversations (sglc.training, train split)"
    if not ids:
        raise UsageError(f"--text {args.text}: the file has no tokens")
    if len(ids) < args.tokens:
        print(f"note: the text has {len(ids)} tokens, fewer than --tokens {args.tokens}")
    calibration = calibrate(path, ids, data=data)
    try:
        calibration.save(out)
    except OSError as exc:
        raise UsageError(f"cannot write {out} ({exc.strerror}); choose another place with "
                         "--out PATH") from None
    print(f"{out}: {calibration.model.num_layers} layers x {calibration.model.num_kv_heads} "
          f"KV heads x {calibration.model.head_dim} channels ranked over {len(ids)} tokens")
    return EXIT_OK
