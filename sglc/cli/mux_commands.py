"""`sglc mux train`, and `sglc run`'s multiplexer flags (`--mux PRED`, `--mux-log LOG`, ...):
the model multiplexer of `gen x(model="auto")` (sglc.runtime.mux)."""

from __future__ import annotations

import argparse
from typing import Any

from sglc.cli.common import EXIT_OK, UsageError
from sglc.runtime.mux import MuxConfig, read_outcomes, train_predictor


def add_mux_options(p: argparse.ArgumentParser) -> None:
    """`sglc run`'s flags for `model="auto"`."""
    g = p.add_argument_group("model multiplexing (gen x(model=\"auto\"))")
    g.add_argument("--mux", metavar="PRED.json",
                   help="route model=\"auto\" gens by this predictor (sglc mux train)")
    g.add_argument("--mux-log", metavar="LOG.jsonl",
                   help="every candidate model answers each auto gen; append their graded "
                        "outcomes here (training data for sglc mux train)")
    g.add_argument("--mux-threshold", type=float, default=0.5, metavar="P",
                   help="least predicted success probability a model needs (default: 0.5)")
    g.add_argument("--mux-penalty", type=float, default=1.0, metavar="C",
                   help="cost of a poor answer, in units of the costliest model's cost "
                        "(default: 1)")
    g.add_argument("--mux-reference", metavar="NAME",
                   help="with --mux-log: the model whose answers grade the others' (default: "
                        "the costliest)")
    g.add_argument("--mux-default", action="store_true",
                   help="gens that name no model are multiplexed too")


def mux_config(args: argparse.Namespace) -> MuxConfig | None:
    """The run's MuxConfig from its flags; None without --mux and --mux-log."""
    if getattr(args, "mux", None) is None and getattr(args, "mux_log", None) is None:
        for flag in ("mux_reference", "mux_default"):
            if getattr(args, flag, None):
                raise UsageError(f"--{flag.replace('_', '-')} goes with --mux or --mux-log")
        return None
    return MuxConfig(predictor=args.mux, log=args.mux_log, threshold=args.mux_threshold,
                     penalty=args.mux_penalty, reference=args.mux_reference,
                     is_default=args.mux_default)


def add_commands(sub: Any) -> None:
    p = sub.add_parser("mux", help="train the model multiplexer's predictor",
                       description="The predictor behind gen x(model=\"auto\").")
    commands = p.add_subparsers(dest="mux_command", metavar="COMMAND", required=True)
    t = commands.add_parser(
        "train", help="fit a predictor on an outcome log",
        description="Fit one logistic regression per model (scikit-learn) of whether it "
                    "answers a query well, from a --mux-log outcome log; write it as JSON.")
    t.add_argument("log", metavar="LOG.jsonl")
    t.add_argument("--out", "-o", required=True, metavar="PRED.json")
    t.add_argument("--quality-threshold", type=float, default=0.5, metavar="Q",
                   help="an answer of quality >= Q counts as good (default: 0.5)")
    t.add_argument("--regularization", type=float, default=1.0, metavar="C",
                   help="inverse L2 strength of the regressions (default: 1)")
    t.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    outcomes = read_outcomes(args.log)
    predictor = train_predictor(outcomes, quality_threshold=args.quality_threshold,
                                regularization=args.regularization)
    predictor.save(args.out)
    print(f"{len(outcomes)} outcomes, {len({o.query for o in outcomes})} queries -> {args.out}")
    for name, fit in predictor.models.items():
        rows = [o for o in outcomes if o.model == name]
        right = sum((predictor.probability(name, o.features) >= 0.5)
                    == (o.quality >= predictor.quality_threshold) for o in rows)
        print(f"  {name}: {fit.num_samples} answers, {fit.good_share:.1%} good, mean cost "
              f"{fit.cost:.3g}, training accuracy {right / len(rows):.1%}")
    return EXIT_OK
