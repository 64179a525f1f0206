"""The shipped default model: within the package budget, and the engine runs it as transformers
does (logits and greedy replies on its own weights, float32)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import sglc
from sglc.runtime.engine import default_model_path
from sglc.runtime.models.loader import load_model_dir

QUESTIONS = [
    [{"role": "user", "content": "Answer with yes or no. Is Rome the capital of Italy?"}],
    [{"role": "user", "content": "Which is larger?\n(A) a mouse\n(B) a horse\nAnswer:"}],
]


@pytest.fixture(scope="module")
def reference():
    path = default_model_path()
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()
    return path, tokenizer, model


def prompt_ids(tokenizer, messages) -> list[int]:
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return tokenizer(text, add_special_tokens=False).input_ids


def test_package_data_is_within_budget():
    files = [p for p in default_model_path().iterdir() if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 25 * 2**20
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in files}


def test_logits_match_transformers(reference):
    path, tokenizer, hf = reference
    ours = load_model_dir(path, dtype="float32", load_tokenizer=False).model
    ids = torch.tensor([prompt_ids(tokenizer, QUESTIONS[1])])
    with torch.no_grad():
        expected = hf(input_ids=ids).logits
        actual = ours.forward_dense(ids)
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-4)


def test_engine_replies_as_transformers_greedy(reference):
    path, tokenizer, hf = reference
    prompts = [prompt_ids(tokenizer, m) for m in QUESTIONS]
    with sglc.Engine(str(path), dtype="float32") as engine:
        outs = engine.generate(prompts, {"max_new_tokens": 32, "temperature": 0})
    for ids, out in zip(prompts, outs, strict=True):
        ref = hf.generate(torch.tensor([ids]), max_new_tokens=32, do_sample=False)
        expected = ref[0, len(ids):].tolist()
        assert out.token_ids == expected[: len(out.token_ids)]
        assert len(out.token_ids) >= len(expected) - 1  # at most the stop token left out
        assert out.text.strip()  # a trained model answers: not empty
