"""The BPE tokenizer: round trips, digits, loss masks, and loading through transformers."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from sglc.training.data import generate, prompt_messages
from sglc.training.tokenizer import (
    CHAT_TEMPLATE,
    IM_END,
    SPECIAL_TOKENS,
    encode_chats,
    render_chat,
    save_tokenizer,
    train_tokenizer,
)


@pytest.fixture(scope="module")
def examples():
    return generate(0, 1500)


@pytest.fixture(scope="module")
def tokenizer(examples):
    return train_tokenizer((render_chat(e.messages) for e in examples), vocab_size=1024)


@pytest.fixture(scope="module")
def hf_tokenizer(tokenizer, tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    save_tokenizer(tokenizer, out)
    return AutoTokenizer.from_pretrained(str(out))


def test_special_tokens_come_first(tokenizer):
    assert [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2]
    assert tokenizer.get_vocab_size() <= 1024


@pytest.mark.parametrize("text", [
    "What is 12*7?", "  two  spaces\nand a newline\t", "Zürich, naïve café — 東京", "",
])
def test_round_trip(tokenizer, text):
    assert tokenizer.decode(tokenizer.encode(text).ids, skip_special_tokens=False) == text


def test_digits_are_single_tokens(tokenizer):
    tokens = tokenizer.encode("Input: 905+17").tokens
    assert [t for t in tokens if any(c.isdigit() for c in t)] == ["9", "0", "5", "1", "7"]


def test_loss_mask_covers_exactly_the_assistant_turns(tokenizer, examples):
    encoded = encode_chats(tokenizer, [e.messages for e in examples[:200]])
    for e, (ids, mask) in zip(examples[:200], encoded, strict=True):
        trained_ids = [i for i, m in zip(ids, mask, strict=True) if m]
        trained = tokenizer.decode(trained_ids, skip_special_tokens=False)
        expected = "".join(m["content"] + IM_END for m in e.messages if m["role"] == "assistant")
        assert trained == expected
        assert tokenizer.decode(ids, skip_special_tokens=False) == render_chat(e.messages)


def test_transformers_loads_it_with_the_chat_template(hf_tokenizer, tokenizer, examples):
    assert hf_tokenizer.eos_token == IM_END and hf_tokenizer.eos_token_id == 2
    assert hf_tokenizer.chat_template == CHAT_TEMPLATE
    for e in examples[:50]:
        prompt = prompt_messages(e)
        text = hf_tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        assert text == render_chat(prompt, add_generation_prompt=True)
        assert text.endswith("<|im_start|>assistant\n")
        assert hf_tokenizer(text, add_special_tokens=False).input_ids == tokenizer.encode(text).ids
