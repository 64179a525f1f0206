"""The default model's tokenizer: byte-level BPE trained on generated chats, ChatML template.

Digits are split one per token so that numbers copy exactly between question, tool input and
answer. Files written by `save_tokenizer` load with `transformers.AutoTokenizer`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END)
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

Messages = Sequence[dict[str, str]]


def render_chat(messages: Messages, add_generation_prompt: bool = False) -> str:
    """The text `CHAT_TEMPLATE` renders, produced in Python."""
    text = "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in messages)
    return text + (f"{IM_START}assistant\n" if add_generation_prompt else "")


def assistant_spans(messages: Messages) -> list[tuple[int, int]]:
    """Character spans of `render_chat(messages)` the model is trained to produce.

    Each span covers one assistant message's content and its closing `<|im_end|>`.
    """
    spans, position = [], 0
    for m in messages:
        head = f"{IM_START}{m['role']}\n"
        start = position + len(head)
        end = start + len(m["content"]) + len(IM_END)
        if m["role"] == "assistant":
            spans.append((start, end))
        position = end + 1
    return spans


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4096) -> Tokenizer:
    """A byte-level BPE tokenizer with the special tokens at ids 0, 1, 2."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def encode_chats(tokenizer: Tokenizer, chats: Sequence[Messages]) -> list[tuple[list[int], list[bool]]]:
    """Token ids of each rendered chat and, per token, whether the loss is taken on it."""
    texts = [render_chat(messages) for messages in chats]
    encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
    result = []
    for messages, encoding in zip(chats, encodings, strict=True):
        spans = assistant_spans(messages)
        mask = [any(s <= start < e for s, e in spans) for start, _ in encoding.offsets]
        result.append((list(encoding.ids), mask))
    return result


def special_token_ids(tokenizer: Tokenizer) -> dict[str, int]:
    """The ids of the special tokens by name."""
    return {token: tokenizer.token_to_id(token) for token in SPECIAL_TOKENS}


def save_tokenizer(tokenizer: Tokenizer, out_dir: str | Path, model_max_length: int = 1024) -> None:
    """Write tokenizer.json, tokenizer_config.json (with the chat template) and
    special_tokens_map.json into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out / "tokenizer.json"))
    special_map = {"bos_token": ENDOFTEXT, "eos_token": IM_END, "pad_token": ENDOFTEXT,
                   "unk_token": ENDOFTEXT, "additional_special_tokens": [IM_START, IM_END]}
    added = {
        str(i): {"content": token, "lstrip": False, "normalized": False, "rstrip": False,
                 "single_word": False, "special": True}
        for token, i in special_token_ids(tokenizer).items()
    }
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "added_tokens_decoder": added,
        "bos_token": ENDOFTEXT, "eos_token": IM_END, "pad_token": ENDOFTEXT,
        "unk_token": ENDOFTEXT, "additional_special_tokens": [IM_START, IM_END],
        "add_bos_token": False, "add_eos_token": False,
        "clean_up_tokenization_spaces": False, "model_max_length": model_max_length,
        "chat_template": CHAT_TEMPLATE,
    }
    _write_json(out / "special_tokens_map.json", special_map)
    _write_json(out / "tokenizer_config.json", config)


def load_tokenizer(model_dir: str | Path) -> Tokenizer:
    """The `tokenizers` tokenizer saved in `model_dir`."""
    return Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
