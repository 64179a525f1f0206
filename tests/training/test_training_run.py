"""A tiny end-to-end training run: the loss falls, and the saved directory loads in
transformers and in our loader with the same logits."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer

from sglc.runtime.models.loader import load_model_dir
from sglc.training.__main__ import parse_args
from sglc.training.batching import IGNORE_INDEX, encode_examples, make_batch
from sglc.training.data import generate
from sglc.training.export import ModelShape, build_model, hf_config
from sglc.training.tokenizer import train_tokenizer
from sglc.training.train import TrainConfig, batch_loss, lr_at, make_optimizers, resume, train

TINY = ModelShape(hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2,
                  intermediate_size=64, max_position_embeddings=256)


def tiny_config(out_dir, optimizer: str = "adamw") -> TrainConfig:
    return TrainConfig(
        out_dir=out_dir, seed=0, max_steps=40, shape=TINY,
        vocab_size=512, num_tokenizer_examples=1500, max_batch_tokens=1024, max_seq_len=256,
        peak_lr=1e-2, warmup_steps=5, autocast_bf16=False, save_dtype="float32",
        log_every=5, eval_every=1000, num_heldout_examples=32, optimizer=optimizer,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cfg = tiny_config(tmp_path_factory.mktemp("model"))
    return cfg, train(cfg)


def test_loss_falls(trained):
    cfg, result = trained
    assert result.num_steps == 40 and result.num_tokens > 0
    log = [line.split() for line in (cfg.out_dir / "loss_log.txt").read_text().splitlines()
           if not line.startswith("#")]
    first, last = float(log[0][-1]), float(log[-1][-1])
    assert last < first - 1.0
    assert result.heldout_loss < math.log(512) - 1.0


def test_muon_trains_the_hidden_matrices_and_adamw_the_rest():
    texts = ["hello world", "the capital of France is Paris"] * 20
    config = hf_config(TINY, train_tokenizer(texts, 300), "float32")
    model = build_model(config, seed=0)
    adamw_only = make_optimizers(model, TrainConfig(out_dir=None, optimizer="adamw"))
    assert [type(o).__name__ for o in adamw_only] == ["AdamW"]
    adamw, muon = make_optimizers(model, TrainConfig(out_dir=None, optimizer="muon"))
    muon_params = [p for g in muon.param_groups for p in g["params"]]
    adamw_params = [p for g in adamw.param_groups for p in g["params"]]
    embedding = model.model.embed_tokens.weight
    assert type(muon).__name__ == "Muon"
    assert all(p.dim() == 2 and p is not embedding for p in muon_params)
    assert len(muon_params) == 7 * TINY.num_layers  # q, k, v, o, gate, up, down
    assert any(p is embedding for p in adamw_params)
    every = {id(p) for p in model.parameters()}
    assert sorted(map(id, muon_params + adamw_params)) == sorted(every)  # each exactly once


def test_muon_run_learns_faster_than_adamw(trained, tmp_path):
    _, adamw = trained
    muon = train(tiny_config(tmp_path, optimizer="muon"))
    assert muon.heldout_loss < adamw.heldout_loss


def test_loss_on_labelled_positions_equals_the_full_cross_entropy(trained):
    cfg, _ = trained
    tokenizer, _, model = resume(cfg.out_dir)
    batch = make_batch(encode_examples(tokenizer, generate(5, 6), 256), pad_id=0)
    loss = batch_loss(model, batch, autocast_bf16=False)
    grad = torch.autograd.grad(loss, model.model.embed_tokens.weight)[0]
    logits = model.forward_dense(batch.input_ids)  # every position, as a plain LM
    expected = F.cross_entropy(logits.flatten(0, 1), batch.labels.flatten(),
                               ignore_index=IGNORE_INDEX)
    expected_grad = torch.autograd.grad(expected, model.model.embed_tokens.weight)[0]
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(grad, expected_grad, atol=1e-6, rtol=1e-4)


def test_unknown_optimizer_is_refused():
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(out_dir=None, optimizer="sgd")


def test_saved_directory_has_hf_files(trained):
    cfg, _ = trained
    config = json.loads((cfg.out_dir / "config.json").read_text())
    generation = json.loads((cfg.out_dir / "generation_config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(str(cfg.out_dir))
    assert config["architectures"] == ["LlamaForCausalLM"] and config["tie_word_embeddings"]
    assert config["vocab_size"] == len(tokenizer)
    assert generation["eos_token_id"] == tokenizer.convert_tokens_to_ids("<|im_end|>")
    with safe_open(str(cfg.out_dir / "model.safetensors"), "pt") as f:
        assert "lm_head.weight" not in f.keys()
        assert f.get_tensor("model.embed_tokens.weight").dtype == torch.float32


def test_transformers_and_our_model_agree(trained):
    cfg, _ = trained
    tokenizer = AutoTokenizer.from_pretrained(str(cfg.out_dir))
    messages = [{"role": "user", "content": "Is a whale a fish? Answer yes or no."}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = torch.tensor([tokenizer(text, add_special_tokens=False).input_ids])
    reference = AutoModelForCausalLM.from_pretrained(str(cfg.out_dir), dtype=torch.float32)
    ours = load_model_dir(cfg.out_dir, dtype="float32", load_tokenizer=False).model
    with torch.no_grad():
        expected = reference(input_ids=ids).logits
        actual = ours.forward_dense(ids)
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-4)


def test_schedule_warms_up_then_decays_to_the_floor():
    cfg = TrainConfig(out_dir=None, peak_lr=1e-3, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(cfg, 0, 0.0) == pytest.approx(1e-4)
    assert lr_at(cfg, 9, 0.0) == pytest.approx(1e-3)
    assert lr_at(cfg, 100, 0.5) == pytest.approx(0.55e-3)
    assert lr_at(cfg, 1000, 1.0) == pytest.approx(1e-4)


def test_command_line_builds_the_config(tmp_path):
    cfg = parse_args(["--out", str(tmp_path), "--max-minutes", "5", "--seed", "3",
                      "--num-layers", "4", "--save-dtype", "float32", "--optimizer", "adamw"])
    assert (cfg.max_minutes, cfg.seed, cfg.shape.num_layers, cfg.save_dtype) == (5, 3, 4, "float32")
    assert cfg.optimizer == "adamw"
    assert parse_args(["--out", str(tmp_path)]).optimizer == "muon"


def test_training_continues_from_a_saved_model(trained, tmp_path):
    cfg, first = trained
    more = TrainConfig(out_dir=tmp_path, seed=1, max_steps=5, init_from=cfg.out_dir,
                       peak_lr=1e-3, warmup_steps=1, autocast_bf16=False, log_every=1,
                       eval_every=1000, num_heldout_examples=32, max_seq_len=256,
                       max_batch_tokens=1024)
    result = train(more)
    assert result.heldout_loss < first.heldout_loss + 0.3
    assert (tmp_path / "tokenizer.json").read_text() == (cfg.out_dir / "tokenizer.json").read_text()
