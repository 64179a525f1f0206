"""Batched bitmasks: rows reused within a step, their union, masking computed columns only."""

from __future__ import annotations

import numpy as np
import torch
from test_constrained_vocabulary import byte_level_tokenizer

from sglc.kernels.bitmask import apply_token_bitmask
from sglc.runtime.constrained.index_cache import build_index
from sglc.runtime.constrained.masks import MaskBuffer, allowed_union, column_bits, mask_columns
from sglc.runtime.constrained.matcher import RegexMatcher
from sglc.runtime.constrained.vocabulary import build_vocabulary


def _matchers():
    tok = byte_level_tokenizer()
    vocab = build_vocabulary(tok, len(tok), [tok.eos_token_id])
    matchers = [RegexMatcher(build_index(r, vocab)) for r in ("[0-9]+", "(yes|no)", "[a-z ]*")]
    matchers[0].advance(vocab.bytes_to_ids[b"4"][0])
    return vocab, matchers


def _fresh(matcher: RegexMatcher, words: int) -> torch.Tensor:
    row = torch.zeros(words, dtype=torch.int32)
    matcher.fill_bitmask(row)
    return row


def test_a_second_fill_of_a_subset_reuses_the_rows_it_moves_down():
    vocab, matchers = _matchers()
    buffer = MaskBuffer(vocab.mask_words)
    first = buffer.fill(matchers).clone()
    for k, matcher in enumerate(matchers):
        assert torch.equal(first[k], _fresh(matcher, vocab.mask_words))
    second = buffer.fill([matchers[1], matchers[2]])  # rows 1, 2 move to 0, 1
    assert torch.equal(second, first[1:])
    matchers[2].advance(vocab.bytes_to_ids[b"a"][0])  # a new state: filled again
    third = buffer.fill([matchers[2]])
    assert torch.equal(third[0], _fresh(matchers[2], vocab.mask_words))


def test_buffer_grows_past_its_first_size():
    vocab, matchers = _matchers()
    buffer = MaskBuffer(vocab.mask_words)
    rows = buffer.fill(matchers * 30)
    assert rows.shape == (90, vocab.mask_words)
    assert torch.equal(rows[89], _fresh(matchers[2], vocab.mask_words))


def test_allowed_union_is_the_or_of_the_rows():
    vocab, matchers = _matchers()
    mask = MaskBuffer(vocab.mask_words).fill(matchers)
    union = allowed_union(mask, vocab.width)
    expected = set()
    for matcher in matchers:
        bits = np.unpackbits(_fresh(matcher, vocab.mask_words).numpy().view(np.uint8),
                             bitorder="little")[: vocab.width]
        expected |= set(np.flatnonzero(bits).tolist())
    assert union.tolist() == sorted(expected)


def test_column_masking_equals_the_full_bitmask():
    """Masking only the computed columns of column-restricted logits (the rest -inf) gives
    the same logits as unpacking and applying the whole bitmask."""
    gen = torch.Generator().manual_seed(0)
    batch, vocab = 5, 300
    words = -(-vocab // 32)
    mask = torch.randint(-(2**31), 2**31 - 1, (batch, words), dtype=torch.int32, generator=gen)
    columns = torch.randperm(vocab, generator=gen)[:70].sort().values
    logits = torch.full((batch, vocab), float("-inf"))
    logits[:, columns] = torch.randn(batch, len(columns), generator=gen)
    expected = logits.clone()
    apply_token_bitmask(expected, mask)
    compact = logits[:, columns].clone()  # only the computed columns (greedy engine path)
    compact.masked_fill_(~column_bits(mask, columns), float("-inf"))
    mask_columns(logits, column_bits(mask, columns), columns)
    assert torch.equal(logits, expected)
    assert torch.equal(compact, expected[:, columns])
    assert torch.isfinite(logits).any() and torch.isinf(logits[:, columns]).any()
