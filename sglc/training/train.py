"""Train the default model on CPU within a time budget and save it in Hugging Face format.

    tokenizer  <- BPE on generated chats (seed)
    model      <- sglc.runtime.models.llama.LlamaForCausalLM, trained through forward_dense
    optimizer  <- Muon on the attention and MLP matrices, AdamW on the embedding and norms
                  (`optimizer="adamw"`: AdamW on everything)
    schedule   <- linear warmup, then cosine decay over the budget (minutes or steps)
    out_dir    <- config.json, model.safetensors, generation_config.json, tokenizer files,
                  loss_log.txt
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from sglc.progress import progress as progress_bar
from sglc.runtime.models.llama import LlamaForCausalLM
from sglc.runtime.models.loader import load_model_dir
from sglc.training.batching import (
    IGNORE_INDEX,
    Batch,
    encode_examples,
    make_batch,
    training_batches,
)
from sglc.training.data import generate
from sglc.training.export import (
    ModelShape,
    build_model,
    count_parameters,
    hf_config,
    save_model_dir,
)
from sglc.training.tokenizer import ENDOFTEXT, load_tokenizer, render_chat, train_tokenizer

# NOTE: the cosine follows the spent fraction of the time budget, so a machine that slows
# down mid-run (shared cores) still ends the schedule at the end of the budget; the first
# MEASURE_STEPS steps give the step-count estimate that is logged.
MEASURE_STEPS = 20
OPTIMIZERS = ("adamw", "muon")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; `max_steps` set makes the schedule step-based."""

    out_dir: Path
    seed: int = 0
    max_minutes: float = 50.0
    max_steps: int | None = None
    shape: ModelShape = field(default_factory=ModelShape)
    vocab_size: int = 4096
    num_tokenizer_examples: int = 30000
    max_batch_tokens: int = 3072
    max_seq_len: int = 512
    peak_lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 50
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    autocast_bf16: bool = True
    num_threads: int = 1
    save_dtype: str = "bfloat16"
    log_every: int = 10
    eval_every: int = 200
    save_every_minutes: float = 10.0
    num_heldout_examples: int = 256
    init_from: Path | None = None  # a saved model directory to continue training
    device: str = "cpu"  # the trainer runs anywhere PyTorch does; the default model is CPU-sized
    optimizer: str = "muon"  # Muon on the hidden matrices, AdamW on the rest; or "adamw"

    def __post_init__(self) -> None:
        if self.max_minutes <= 0 or (self.max_steps is not None and self.max_steps <= 0):
            raise ValueError("max_minutes and max_steps must be positive")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")


@dataclass(frozen=True)
class TrainResult:
    num_steps: int
    num_tokens: int
    minutes: float
    final_loss: float
    heldout_loss: float
    num_parameters: int


def lr_at(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warmup over `warmup_steps`, then cosine from `peak_lr` to `min_lr_ratio * peak_lr`
    as `progress` (the spent fraction of the budget) goes from 0 to 1."""
    if step < cfg.warmup_steps:
        return cfg.peak_lr * (step + 1) / cfg.warmup_steps
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return cfg.peak_lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def batch_loss(model: LlamaForCausalLM, batch: Batch, autocast_bf16: bool) -> torch.Tensor:
    """Mean cross-entropy over the trained (assistant) tokens of `batch`. Logits (and the last
    layer's output projection and MLP) are computed at those positions only: about a third
    of a batch's tokens, the rest being prompts and padding."""
    device = model.lm_head.weight.device
    labels = batch.labels.to(device).flatten()
    keep = (labels != IGNORE_INDEX).nonzero().squeeze(1)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast_bf16):
        logits = model.forward_dense(batch.input_ids.to(device), keep)
    return F.cross_entropy(logits.float(), labels[keep])


@torch.no_grad()
def evaluate(model: LlamaForCausalLM, batches: list[Batch], autocast_bf16: bool) -> float:
    """Token-weighted mean loss over `batches`."""
    model.eval()
    total = count = 0.0
    for batch in batches:
        n = batch.num_trained_tokens
        total += batch_loss(model, batch, autocast_bf16).item() * n
        count += n
    model.train()
    return total / max(count, 1)


def heldout_batches(cfg: TrainConfig, tokenizer: Tokenizer) -> list[Batch]:
    """Fixed evaluation batches from the held-out split."""
    examples = generate(cfg.seed, cfg.num_heldout_examples, "heldout")
    encoded = encode_examples(tokenizer, examples, cfg.max_seq_len)
    pad_id = tokenizer.token_to_id(ENDOFTEXT)
    return [make_batch(encoded[i: i + 32], pad_id) for i in range(0, len(encoded), 32)]


def make_optimizers(model: LlamaForCausalLM, cfg: TrainConfig) -> list[torch.optim.Optimizer]:
    """AdamW with weight decay on matrices only (not norms); with `optimizer="muon"`, the
    hidden matrices (attention and MLP projections, not the embedding / lm_head) go to
    `torch.optim.Muon` instead, its step scaled to AdamW's update size so one learning rate
    schedule drives both."""
    embeddings = {id(model.model.embed_tokens.weight), id(model.lm_head.weight)}
    hidden, decay, no_decay = [], [], []
    for p in model.parameters():  # tied weights come once
        if p.dim() < 2:
            no_decay.append(p)
        elif cfg.optimizer == "muon" and id(p) not in embeddings:
            hidden.append(p)
        else:
            decay.append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    optimizers: list[torch.optim.Optimizer] = [
        torch.optim.AdamW(groups, lr=cfg.peak_lr, betas=(0.9, 0.95), eps=1e-8)]
    if hidden:
        optimizers.append(torch.optim.Muon(hidden, lr=cfg.peak_lr, weight_decay=cfg.weight_decay,
                                           adjust_lr_fn="match_rms_adamw"))
    return optimizers


class Progress:
    """A progress bar on a terminal (sglc.progress), notes on stderr, and the loss log next
    to the model."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.start = time.monotonic()
        cfg.out_dir.mkdir(parents=True, exist_ok=True)
        self.log = (cfg.out_dir / "loss_log.txt").open("w")
        self.log.write("# step minutes tokens lr loss\n")
        # the bar counts per-mille of the budget: steps, or minutes without max_steps
        self.bar = progress_bar(desc="training", total=1000, unit="‰")

    @property
    def minutes(self) -> float:
        return (time.monotonic() - self.start) / 60

    def progress(self, step: int) -> float:
        if self.cfg.max_steps is not None:
            return step / self.cfg.max_steps
        return self.minutes / self.cfg.max_minutes

    def done(self, step: int) -> bool:
        return self.progress(step) >= 1.0 or self.minutes >= self.cfg.max_minutes

    def step(self, step: int, num_tokens: int, lr: float, loss: float) -> None:
        rate = num_tokens / max(self.minutes * 60, 1e-9)
        self.bar.update(min(round(1000 * self.progress(step)), 1000) - self.bar.n)
        self.bar.set_postfix_str(
            f"step {step} | {self.minutes:.1f}/{self.cfg.max_minutes:g} min | loss {loss:.3f} "
            f"| lr {lr:.2e} | {num_tokens / 1e6:.2f}M tok | {rate:.0f} tok/s"
        )
        self.log.write(f"{step} {self.minutes:.2f} {num_tokens} {lr:.3e} {loss:.4f}\n")
        self.log.flush()

    def note(self, text: str) -> None:
        self.bar.write(text, file=sys.stderr)  # above the bar, which stays at the bottom
        self.log.write(f"# {text}\n")
        self.log.flush()

    def close(self) -> None:
        self.bar.close()
        self.log.close()


def prepare(cfg: TrainConfig) -> tuple[Tokenizer, dict, LlamaForCausalLM]:
    """Seed everything, train the tokenizer, and build the initial model."""
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    torch.set_num_threads(cfg.num_threads)
    if cfg.init_from is not None:
        tokenizer, config, model = resume(cfg.init_from)
    else:
        examples = generate(cfg.seed + 1, cfg.num_tokenizer_examples)
        tokenizer = train_tokenizer((render_chat(e.messages) for e in examples), cfg.vocab_size)
        config = hf_config(cfg.shape, tokenizer, cfg.save_dtype)
        model = build_model(config, cfg.seed)
    model.to(cfg.device)
    model.rope_cache = model.build_rope(cfg.device)
    return tokenizer, config, model


def resume(model_dir: Path) -> tuple[Tokenizer, dict, LlamaForCausalLM]:
    """Tokenizer, config and float32 weights of a saved model, to train further."""
    config = json.loads((model_dir / "config.json").read_text())
    # fuse=False: keep the Hugging Face parameter layout, which save_model_dir writes
    model = load_model_dir(model_dir, dtype="float32", load_tokenizer=False, fuse=False).model
    return load_tokenizer(model_dir), config, model.train().requires_grad_(True)


def train(cfg: TrainConfig) -> TrainResult:
    """Run the whole training; the model directory is written at the end and every
    `save_every_minutes`."""
    tokenizer, config, model = prepare(cfg)
    optimizers = make_optimizers(model, cfg)
    evaluation = heldout_batches(cfg, tokenizer)
    batches = training_batches(tokenizer, cfg.seed + 2, cfg.max_batch_tokens, cfg.max_seq_len)
    progress = Progress(cfg)
    progress.note(f"{count_parameters(model) / 1e6:.2f}M parameters, vocab "
                  f"{config['vocab_size']}, seed {cfg.seed}")
    step = num_tokens = 0
    recent: list[float] = []
    last_loss = math.nan
    last_save = 0.0
    while not progress.done(step):
        batch = next(batches)
        lr = lr_at(cfg, step, progress.progress(step))
        loss = train_step(model, optimizers, batch, lr, cfg)
        step, num_tokens = step + 1, num_tokens + batch.num_tokens
        recent.append(loss)
        if step % cfg.log_every == 0 or step == 1:
            progress.step(step, num_tokens, lr, sum(recent) / len(recent))
            last_loss, recent = sum(recent) / len(recent), []
        if step == MEASURE_STEPS and cfg.max_steps is None:
            seconds = progress.minutes * 60 / step
            progress.note(f"{seconds:.2f} s/step over the first {step} steps: about "
                          f"{int(cfg.max_minutes * 60 / seconds)} steps in the budget")
        if step % cfg.eval_every == 0:
            progress.note(f"step {step} heldout loss {evaluate(model, evaluation, cfg.autocast_bf16):.4f}")
        if progress.minutes - last_save >= cfg.save_every_minutes:
            save_model_dir(model, config, tokenizer, cfg.out_dir, cfg.save_dtype)
            last_save = progress.minutes
    heldout = evaluate(model, evaluation, cfg.autocast_bf16)
    progress.note(f"done: {step} steps, {num_tokens} tokens, {progress.minutes:.1f} min, "
                  f"train loss {last_loss:.4f}, heldout loss {heldout:.4f}")
    progress.close()
    save_model_dir(model, config, tokenizer, cfg.out_dir, cfg.save_dtype)
    return TrainResult(step, num_tokens, progress.minutes, last_loss, heldout,
                       count_parameters(model))


def train_step(model: LlamaForCausalLM, optimizers: list[torch.optim.Optimizer], batch: Batch,
               lr: float, cfg: TrainConfig) -> float:
    """One optimizer step on `batch`; returns its loss."""
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = lr
    loss = batch_loss(model, batch, cfg.autocast_bf16)
    model.zero_grad(set_to_none=True)  # every optimizer's parameters
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    for optimizer in optimizers:
        optimizer.step()
    return loss.item()
