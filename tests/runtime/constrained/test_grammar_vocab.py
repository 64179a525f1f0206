"""Tokens a grammar never allows (`grammar_vocab.never_tokens`), left out of its llguidance
tokenizer: masks on random walks equal those of the full tokenizer, token for token, and the
tokens found are the ones no text of the grammar can hold. Classes of tokens no terminal
tells apart (`token_classes`), walked as one: masks, `is_allowed`, forced tokens and
rollbacks as with the full tokenizer."""

from __future__ import annotations

import dataclasses
import random
import sys
from pathlib import Path

import numpy as np
import pytest
from test_grammar_keys import advance_both, allowed_text

from sglc.constraints.grammar import lark_grammar, schema_grammar
from sglc.runtime.constrained import grammar_cache
from sglc.runtime.constrained.grammar_cache import (
    MIN_LEFT_OUT,
    Tokenizers,
    build_grammar,
    llg_tokenizer,
)
from sglc.runtime.constrained.grammar_keys import for_grammar
from sglc.runtime.constrained.grammar_matcher import GrammarMatcher
from sglc.runtime.constrained.grammar_vocab import never_tokens, token_classes
from sglc.runtime.constrained.matcher import synthetic_token_bytes
from sglc.runtime.constrained.vocabulary import TokenVocabulary, vocabulary_from_token_bytes

sys.path.append(str(Path(__file__).parents[1]))
from grammars import ARITHMETIC, GRAMMARS, parses  # noqa: E402

SIZE = 4096
PIECES = [b"1000", b"1.", b"1.5", b"((", b"))", b"-(", b"1..", b".5", b"2+", b"+*", b"a",
          b"1\xe2", b"\x80("]  # the last two: pieces of a character (not whole UTF-8)


@pytest.fixture(scope="module")
def vocab() -> TokenVocabulary:
    token_bytes = synthetic_token_bytes(SIZE)
    for i, piece in enumerate(PIECES):  # arithmetic-like tokens, in place of random words
        token_bytes[300 + i] = piece
    return vocabulary_from_token_bytes(token_bytes, SIZE + 1, [SIZE])


def test_never_tokens_are_those_no_text_holds(vocab):
    found = set(never_tokens(for_grammar(ARITHMETIC), vocab.token_bytes).ids.tolist())
    never = {piece for i, piece in enumerate(PIECES) if 300 + i in found}
    # four digits (NUMBER takes three, and no NUMBER follows a NUMBER); two dots; an
    # operator after an operator other than "-"; a letter; bytes past ASCII, which no
    # terminal takes (the single bytes 0x80-0xff of the synthetic vocabulary too)
    assert never == {b"1000", b"1..", b"+*", b"a", b"1\xe2", b"\x80("}
    assert {bytes([b]) for b in range(128, 256)} <= {vocab.token_bytes[t] for t in found}


def test_pieces_of_characters_are_kept_where_a_terminal_takes_more_than_ascii(vocab):
    found = set(never_tokens(for_grammar('start: WORD\nWORD: /[^ ]{1,8}/\n'),
                             vocab.token_bytes).ids.tolist())
    pieces = [300 + PIECES.index(b"1\xe2"), 300 + PIECES.index(b"\x80(")]
    assert not found & {*pieces, *range(128, 256)}  # a WORD may hold any character
    assert 300 + PIECES.index(b"1..") not in found and 300 + PIECES.index(b"a") not in found


@pytest.mark.parametrize("name", sorted(GRAMMARS))
def test_masks_without_the_never_tokens_equal_the_full_tokenizers(vocab, name):
    grammar = lark_grammar(GRAMMARS[name])
    never = never_tokens(for_grammar(GRAMMARS[name]), vocab.token_bytes)
    assert len(never.ids) > SIZE // 2  # random words: most never fit these grammars
    full = build_grammar(grammar, vocab, Tokenizers(vocab, None).plain)
    lean = build_grammar(grammar, vocab, llg_tokenizer(vocab, None, never.ids).with_slices([]))
    rng = random.Random(1)
    never_ids = never.ids.tolist()
    row_full = np.zeros(vocab.mask_words, dtype=np.int32)
    row_lean = row_full.copy()
    allowed_ever: set[int] = set()
    for _ in range(30):
        a, b = GrammarMatcher(full), GrammarMatcher(lean)
        for _ in range(40):
            a.fill_bitmask(row_full)
            b.fill_bitmask(row_lean)
            assert np.array_equal(row_full, row_lean), a.text_bytes()
            for left_out in rng.sample(never_ids, 3):  # asked of llguidance or the cached row
                assert not b.is_allowed(left_out)
            bits, text = allowed_text(row_full, vocab)
            allowed_ever.update(text)
            if not text or (bits[vocab.eos_id] and rng.random() < 0.2):
                break
            token = rng.choice(text)
            a.advance(token)
            b.advance(token)
    assert not allowed_ever & set(never_ids)


def test_the_engines_build_leaves_tokens_out_where_it_pays(vocab, monkeypatch):
    tokenizers = Tokenizers(vocab, None)
    keys = for_grammar(ARITHMETIC)
    never = never_tokens(keys, vocab.token_bytes)
    assert never.walked < MIN_LEFT_OUT  # a 4k vocabulary: too few to pay for a tokenizer
    assert build_grammar(lark_grammar(ARITHMETIC), vocab, tokenizers).left_out == 0
    monkeypatch.setattr(grammar_cache, "MIN_LEFT_OUT", 1)
    compiled = build_grammar(lark_grammar(ARITHMETIC), vocab, tokenizers)
    assert compiled.left_out == len(never.ids)
    matcher, plain = GrammarMatcher(compiled), GrammarMatcher(
        build_grammar(lark_grammar(ARITHMETIC), vocab, tokenizers.plain))
    for piece in (b"(", b"1.", b"5", b"+"):
        token = vocab.bytes_to_ids[piece][0]
        matcher.advance(token)
        plain.advance(token)
        rows = np.zeros((2, vocab.mask_words), dtype=np.int32)
        matcher.fill_bitmask(rows[0])
        plain.fill_bitmask(rows[1])
        assert np.array_equal(rows[0], rows[1])
    # a JSON schema's grammar (no Lark text, no keys) keeps the shared tokenizer
    schema = '{"type": "object", "properties": {"a": {"type": "integer"}}}'
    assert build_grammar(schema_grammar(schema), vocab, tokenizers).left_out == 0


def test_a_class_of_tokens_walked_as_one_gives_the_full_tokenizers_masks(monkeypatch):
    # 1,000 three-digit tokens: NUMBER takes any digit alike, so they are one class
    token_bytes = synthetic_token_bytes(SIZE)
    digits = list(range(1000, 2000))
    for i, tid in enumerate(digits):
        token_bytes[tid] = b"%03d" % i
    vocab = vocabulary_from_token_bytes(token_bytes, SIZE + 1, [SIZE])
    keys = for_grammar(ARITHMETIC)
    classes = token_classes(keys, vocab.token_bytes, never_tokens(keys, vocab.token_bytes).ids,
                            vocab.mask_words)
    assert classes is not None and classes.reps[0] in digits
    assert set(digits) - {classes.reps[0]} <= set(classes.members)
    assert all(len(vocab.token_bytes[t]) == 3 and vocab.token_bytes[t].isdigit()
               for t in classes.members)

    monkeypatch.setattr(grammar_cache, "MIN_LEFT_OUT", 1)
    lean = _lockstep(vocab, ARITHMETIC, seed=4)
    assert lean.left_out >= len(classes.members)


RUNS = [c * n for c in (b"-", b"(", b")", b"[", b"]", b"{") for n in range(2, 15)] + [
    b"+" + b"-" * n for n in range(1, 13)] + [b"1-", b"1" + b"-" * 12, b",[", b",[[[[[[[[[["]


@pytest.mark.parametrize("name", ["arithmetic", "json", "nested_lists", "toy_language"])
def test_runs_walked_as_one_give_the_full_tokenizers_masks(monkeypatch, name):
    token_bytes = synthetic_token_bytes(SIZE)
    ids = {}
    for i, run in enumerate(RUNS):  # runs of one character, in place of random words
        token_bytes[2000 + i] = run
        ids[run] = 2000 + i
    vocab = vocabulary_from_token_bytes(token_bytes, SIZE + 1, [SIZE])
    keys = for_grammar(GRAMMARS[name])
    classes = token_classes(keys, vocab.token_bytes, never_tokens(keys, vocab.token_bytes).ids,
                            vocab.mask_words)
    spell = {} if classes is None else classes.spell
    if name == "arithmetic":  # `-` and `(` pump, `)` does not (it needs an open one)
        assert spell[ids[b"-" * 14]] == (ord("-"),) * 14
        assert spell[ids[b"+" + b"-" * 12]] == (ids[b"+-"],) + (ord("-"),) * 11
        assert spell[ids[b"1" + b"-" * 12]] == (ids[b"1-"],) + (ord("-"),) * 11
        assert spell[ids[b"(" * 14]] == (ord("("),) * 14
        assert ids[b")" * 14] not in spell and ids[b"-" * 2] in spell
    if name == "json":
        assert spell[ids[b",[[[[[[[[[["]] == (ids[b",["],) + (ord("["),) * 9
    monkeypatch.setattr(grammar_cache, "MIN_LEFT_OUT", 1)
    _lockstep(vocab, GRAMMARS[name], seed=5)


def _lockstep(vocab: TokenVocabulary, text: str, seed: int) -> grammar_cache.CompiledGrammar:
    """Random walks (with rollbacks) of the engine's build of `text`, its token classes
    walked as one, and the full tokenizer's in lockstep: masks, forced tokens and
    `is_allowed` (of class members too) agree, and finished texts parse. Returns the
    engine's build."""
    tokenizers = Tokenizers(vocab, None)
    grammar = lark_grammar(text)
    lean = build_grammar(grammar, vocab, tokenizers)
    assert lean.classes is not None
    full = dataclasses.replace(build_grammar(grammar, vocab, tokenizers.plain), keys=None)
    rng = random.Random(seed)
    rows = np.zeros((2, vocab.mask_words), dtype=np.int32)
    members = lean.classes.members
    taken = 0
    for _ in range(30):
        a, b = GrammarMatcher(lean, mask_cache_threshold_us=0), GrammarMatcher(full)
        for _ in range(30):
            a.fill_bitmask(rows[0])
            b.fill_bitmask(rows[1])
            assert np.array_equal(rows[0], rows[1]), b.text_bytes()
            assert a.forced_tokens() == b.forced_tokens()
            for token in rng.sample(members, min(3, len(members))) + [rng.randrange(vocab.width)]:
                assert a.is_allowed(token) == b.is_allowed(token)
            bits, allowed = allowed_text(rows[1], vocab)
            if not allowed or (bits[vocab.eos_id] and rng.random() < 0.2):
                assert parses(text, b.text_bytes().decode())
                break
            advance_both(rng, a, b, allowed)
            taken += a.tokens[-1:] != [] and a.tokens[-1] in lean.classes.spell
    assert taken  # the walks went through class members
    return lean
