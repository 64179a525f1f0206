"""The llguidance tokenizers behind the grammar path: slices chosen per grammar (the masks
must not depend on the choice) and the memo of forced-text tokenizations."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_constrained_vocabulary import byte_level_tokenizer

from sglc.constraints.grammar import lark_grammar, schema_grammar
from sglc.runtime.constrained.grammar_cache import (
    Tokenizers,
    _Tokenizer,
    build_grammar,
    slices_help,
)
from sglc.runtime.constrained.grammar_matcher import GrammarMatcher
from sglc.runtime.constrained.jump_forward import make_encoder
from sglc.runtime.constrained.vocabulary import TokenVocabulary, build_vocabulary

sys.path.append(str(Path(__file__).parents[1]))
from grammars import JSON, SQL  # noqa: E402

QUOTED = 'start: "say " STR (", " STR)*\nSTR: /"[^"\\\\]{0,40}"/\n'
SCHEMA = '{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}'


@pytest.fixture(scope="module")
def setup() -> tuple[TokenVocabulary, Tokenizers]:
    tok = byte_level_tokenizer()
    vocab = build_vocabulary(tok, len(tok) + 3, [tok.eos_token_id])
    return vocab, Tokenizers(vocab, make_encoder(tok))


def test_slices_help_where_a_lexeme_can_hold_a_whole_slice():
    assert slices_help(schema_grammar(SCHEMA))
    assert slices_help(lark_grammar(QUOTED))
    assert slices_help(lark_grammar('start: /.+/'))
    assert not slices_help(lark_grammar(SQL))
    assert not slices_help(lark_grammar(JSON))  # its strings are a narrow class


def _mask(matcher: GrammarMatcher, vocab: TokenVocabulary) -> np.ndarray:
    row = torch.zeros(vocab.mask_words, dtype=torch.int32)
    matcher.fill_bitmask(row)
    return row.numpy().copy()


@pytest.mark.parametrize("grammar", [lark_grammar(SQL), lark_grammar(QUOTED),
                                     schema_grammar(SCHEMA)], ids=["sql", "quoted", "schema"])
def test_masks_are_the_same_with_and_without_slices(setup, grammar):
    vocab, tokenizers = setup
    sliced = build_grammar(grammar, vocab, tokenizers.sliced)
    plain = build_grammar(grammar, vocab, tokenizers.plain)
    rng = random.Random(0)
    stops = set(vocab.stop_ids)
    for _ in range(4):
        a, b = GrammarMatcher(sliced), GrammarMatcher(plain)
        for _ in range(30):
            mask = _mask(a, vocab)
            assert np.array_equal(mask, _mask(b, vocab))
            bits = np.unpackbits(mask.view(np.uint8), bitorder="little")[: vocab.width]
            text = [int(t) for t in np.flatnonzero(bits) if int(t) not in stops]
            if not text:
                break
            token = rng.choice(text)
            a.advance(token)
            b.advance(token)


def test_forced_texts_are_tokenized_once_each(setup):
    vocab, _ = setup
    tok = byte_level_tokenizer()
    encode = make_encoder(tok)
    calls: list[str] = []

    def counting(text: str) -> list[int]:
        calls.append(text)
        return encode(text)

    memo = _Tokenizer(vocab, counting, memo_entries=2)
    bare = _Tokenizer(vocab, encode, memo_entries=0)
    for text in [" FROM ", " FROM ", "SELECT ", " FROM "]:
        ids = memo(text)
        assert ids == bare(text)
        assert vocab.decode(ids) == text.encode()
        ids.append(0)  # the caller's list is its own: the memo is unchanged
    assert calls.count(" FROM ") == 1 and calls.count("SELECT ") == 1
    memo("ELECT ")  # a third text: the memo (two entries) starts over
    memo(" FROM ")
    assert calls.count(" FROM ") == 2
