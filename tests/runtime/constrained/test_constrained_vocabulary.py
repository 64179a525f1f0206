"""Token vocabulary: the raw bytes of byte-level BPE and SentencePiece byte-fallback tokens.

Also defines the small test tokenizers the other test_constrained_* files import.
"""

from __future__ import annotations

import functools
import json

import pytest
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from sglc.runtime.constrained.vocabulary import (
    build_vocabulary,
    byte_vocabulary,
    vocabulary_from_token_bytes,
)
from sglc.runtime.detokenize import special_token_ids

CORPUS = [
    "the cat sat on the mat. hello world\nthe end\n",
    '{"name":"bob","age":42} {"name":"alice","age":7} {"name":"eve","age":0}',
    "héllo wörld 世界 🙂 — caffè crème",
    "numbers 3.14 2.5 100 0.001 -7",
] * 30

TEXTS = [
    "the cat sat",
    " hello\nworld\n\n",
    '{"name":"zed","age":123}',
    "héllo 世界 🙂 ünïcödé ✓",
    "\t tabs  and   spaces ",
]


@functools.cache
def byte_level_tokenizer(vocab_size: int = 400) -> PreTrainedTokenizerFast:
    """GPT-2/Llama-3/Qwen-style byte-level BPE; ids 0-2 special, one non-special added token."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.add_tokens([AddedToken("<think>", special=False, normalized=False)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


@functools.cache
def sentencepiece_tokenizer(vocab_size: int = 160) -> PreTrainedTokenizerFast:
    """Llama-2/Mistral-style BPE: ``▁`` for spaces, ``<0xNN>`` byte-fallback tokens."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.decoder = decoders.Sequence([
        decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
        decoders.Strip(" ", 1, 0),
    ])
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False,
        limit_alphabet=60,
    )
    tok.train_from_iterator([t for t in CORPUS if t.isascii()], trainer)
    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    first = len(vocab)
    spec["model"]["vocab"] = {**vocab, **{f"<0x{b:02X}>": first + b for b in range(256)}}
    spec["model"]["byte_fallback"] = True
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(spec)),
        bos_token="<s>", eos_token="</s>", unk_token="<unk>",
    )


def _spelled(vocab, ids) -> bytes:
    assert all(vocab.token_bytes[t] is not None for t in ids)
    return vocab.decode(ids)


# --- byte-level BPE --------------------------------------------------------------------------


def test_byte_level_tokens_are_raw_bytes():
    tok = byte_level_tokenizer()
    vocab = build_vocabulary(tok, len(tok), [tok.eos_token_id])
    pieces = tok.convert_ids_to_tokens(list(range(len(tok))))
    for tid, piece in enumerate(pieces):
        if piece == "Ġ":
            assert vocab.token_bytes[tid] == b" "
        if piece == "Ċ":
            assert vocab.token_bytes[tid] == b"\n"
        if piece.startswith("Ġ") and len(piece) > 1 and piece[1:].isalpha() and piece.isascii():
            assert vocab.token_bytes[tid] == b" " + piece[1:].encode()
    assert any(p.startswith("Ġ") and len(p) > 2 for p in pieces), "expected Ġword tokens"
    for text in TEXTS:
        assert _spelled(vocab, tok.encode(text, add_special_tokens=False)) == text.encode()


def test_byte_level_multibyte_characters_split_across_tokens():
    tok = byte_level_tokenizer()
    vocab = build_vocabulary(tok, len(tok), [tok.eos_token_id])
    ids = tok.encode("✓", add_special_tokens=False)  # not in the corpus: one token per byte
    assert len(ids) == 3
    assert [vocab.token_bytes[t] for t in ids] == [b"\xe2", b"\x9c", b"\x93"]
    partial = [b for b in vocab.token_bytes if b is not None and not _is_utf8(b)]
    assert partial, "single bytes >= 0x80 are tokens that are not valid UTF-8 on their own"


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_special_tokens_left_out_and_added_tokens_literal():
    tok = byte_level_tokenizer()
    vocab = build_vocabulary(tok, len(tok), [tok.eos_token_id])
    for special in ("<pad>", "<s>", "</s>"):
        assert vocab.token_bytes[tok.convert_tokens_to_ids(special)] is None
    assert vocab.token_bytes[tok.convert_tokens_to_ids("<think>")] == b"<think>"


def test_the_vocabulary_leaves_out_what_the_detokenizer_skips():
    for tok in (byte_level_tokenizer(), sentencepiece_tokenizer()):
        vocab = build_vocabulary(tok, len(tok), [tok.eos_token_id])
        missing = {i for i, data in enumerate(vocab.token_bytes) if data is None}
        assert missing == special_token_ids(tok)  # the stop id is one of them


def test_raw_tokenizers_tokenizer_gives_the_same_vocabulary():
    tok = byte_level_tokenizer()
    a = build_vocabulary(tok, len(tok), [2])
    b = build_vocabulary(tok.backend_tokenizer, len(tok), [2])
    assert a.token_bytes == b.token_bytes
    assert a.hash == b.hash


# --- SentencePiece byte fallback -------------------------------------------------------------


def test_sentencepiece_space_and_byte_fallback():
    tok = sentencepiece_tokenizer()
    vocab = build_vocabulary(tok, len(tok), [tok.eos_token_id])
    ids = {p: tok.convert_tokens_to_ids(p) for p in ("\u2581the", "<0x0A>", "<0xE4>", "\u2581")}
    assert vocab.token_bytes[ids["\u2581the"]] == b" the"
    assert vocab.token_bytes[ids["<0x0A>"]] == b"\n"
    assert vocab.token_bytes[ids["<0xE4>"]] == b"\xe4"
    assert vocab.token_bytes[ids["\u2581"]] == b" "
    assert vocab.token_bytes[tok.convert_tokens_to_ids("<unk>")] is None


@pytest.mark.parametrize("text", TEXTS)
def test_sentencepiece_tokens_spell_the_text(text):
    tok = sentencepiece_tokenizer()
    vocab = build_vocabulary(tok, len(tok), [tok.eos_token_id])
    ids = tok.encode(text, add_special_tokens=False)
    # Metaspace prepends "▁" unless the text starts with a space: the model sees the space.
    expected = text if text.startswith(" ") else " " + text
    assert _spelled(vocab, ids) == expected.encode()


def test_sentencepiece_multibyte_character_as_byte_tokens():
    tok = sentencepiece_tokenizer()
    vocab = build_vocabulary(tok, len(tok), [tok.eos_token_id])
    ids = tok.encode("世", add_special_tokens=False)
    assert [vocab.token_bytes[t] for t in ids][-3:] == [b"\xe4", b"\xb8", b"\x96"]


# --- width, stops, hash ----------------------------------------------------------------------


def test_width_larger_and_smaller_than_the_tokenizer():
    tok = byte_level_tokenizer()
    n = len(tok)
    wide = build_vocabulary(tok, n + 45, [2])
    assert len(wide.token_bytes) == n + 45 and wide.mask_words == -(-(n + 45) // 32)
    assert all(b is None for b in wide.token_bytes[n:])
    narrow = build_vocabulary(tok, 200, [2])
    assert len(narrow.token_bytes) == 200
    assert all(min(ids) < 200 for ids in narrow.bytes_to_ids.values())


def test_several_stop_ids():
    tok = byte_level_tokenizer()
    vocab = build_vocabulary(tok, len(tok) + 8, [len(tok) + 3, 2, 10_000])
    assert vocab.stop_ids == (2, len(tok) + 3)  # ids past the width are dropped
    assert vocab.eos_id == 2
    # A stop id that is an ordinary token is a stop, not text.
    text_id = tok.convert_tokens_to_ids("the")
    with_text_stop = build_vocabulary(tok, len(tok), [2, text_id])
    assert with_text_stop.token_bytes[text_id] is None and text_id in with_text_stop.stop_ids
    with pytest.raises(ValueError, match="stop id"):
        build_vocabulary(tok, len(tok), [])
    with pytest.raises(ValueError, match="stop id"):
        build_vocabulary(tok, 50, [60])


def test_empty_tokens_dropped():
    vocab = vocabulary_from_token_bytes({0: b"a", 1: b"", 2: b"bc"}, 5, [4])
    assert vocab.token_bytes == [b"a", None, b"bc", None, None]
    assert vocab.max_token_len == 2


def test_vocabulary_hash_is_stable_and_sensitive():
    tok = byte_level_tokenizer()
    n = len(tok)
    base = build_vocabulary(tok, n, [2]).hash
    assert build_vocabulary(tok, n, [2]).hash == base
    assert build_vocabulary(tok, n + 32, [2]).hash != base
    assert build_vocabulary(tok, n, [2, 1]).hash != base
    assert build_vocabulary(tok, n, [1, 2]).hash == build_vocabulary(tok, n, [2, 1]).hash
    tokens = {i: b for i, b in enumerate(build_vocabulary(tok, n, [2]).token_bytes) if b}
    assert vocabulary_from_token_bytes(tokens, n, [2]).hash == base
    tokens[5] = b"changed"
    assert vocabulary_from_token_bytes(tokens, n, [2]).hash != base


def test_byte_vocabulary():
    vocab = byte_vocabulary()
    assert vocab.width == 257 and vocab.stop_ids == (256,)
    assert all(vocab.token_bytes[b] == bytes([b]) for b in range(256))
