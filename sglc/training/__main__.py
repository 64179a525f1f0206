"""`python -m sglc.training --out DIR --max-minutes M --seed S`: train the default model.
The shipped one: `--max-minutes 57 --threads 2 --seed 0` on a 2-core CPU."""

from __future__ import annotations

import argparse
from pathlib import Path

from sglc.training.export import ModelShape
from sglc.training.train import OPTIMIZERS, TrainConfig, train


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """The training configuration from the command line."""
    p = argparse.ArgumentParser(prog="python -m sglc.training", description=__doc__)
    p.add_argument("--out", type=Path, required=True, help="model directory to write")
    p.add_argument("--max-minutes", type=float, default=50.0, help="time budget")
    p.add_argument("--max-steps", type=int, default=None, help="step budget (deterministic)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden-size", type=int, default=256)
    p.add_argument("--num-layers", type=int, default=6)
    p.add_argument("--num-heads", type=int, default=8)
    p.add_argument("--num-kv-heads", type=int, default=4)
    p.add_argument("--intermediate-size", type=int, default=704)
    p.add_argument("--vocab-size", type=int, default=4096)
    p.add_argument("--batch-tokens", type=int, default=3072, help="padded tokens per step")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    p.add_argument("--warmup-steps", type=int, default=50)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads; 1 is fastest when other work shares the cores")
    p.add_argument("--save-dtype", choices=("bfloat16", "float32", "float16"), default="bfloat16")
    p.add_argument("--init-from", type=Path, default=None,
                   help="continue training a saved model directory (its tokenizer and shape)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="muon",
                   help="muon (default): torch.optim.Muon on the hidden matrices, AdamW on "
                        "the embedding and norms; adamw: AdamW on everything")
    p.add_argument("--no-autocast", action="store_true", help="train in float32, not bf16 autocast")
    a = p.parse_args(argv)
    shape = ModelShape(hidden_size=a.hidden_size, num_layers=a.num_layers, num_heads=a.num_heads,
                       num_kv_heads=a.num_kv_heads, intermediate_size=a.intermediate_size)
    return TrainConfig(
        out_dir=a.out, seed=a.seed, max_minutes=a.max_minutes, max_steps=a.max_steps,
        shape=shape, vocab_size=a.vocab_size, max_batch_tokens=a.batch_tokens, peak_lr=a.lr,
        warmup_steps=a.warmup_steps, num_threads=a.threads, save_dtype=a.save_dtype,
        autocast_bf16=not a.no_autocast, init_from=a.init_from, device=a.device,
        optimizer=a.optimizer,
    )


def main(argv: list[str] | None = None) -> None:
    result = train(parse_args(argv))
    print(result)


if __name__ == "__main__":
    main()
