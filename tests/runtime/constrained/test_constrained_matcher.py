"""RegexMatcher: masks allow exactly the completable tokens, stops only when final, rollback."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
import torch
from test_constrained_vocabulary import byte_level_tokenizer, sentencepiece_tokenizer

from sglc.runtime.constrained.index_cache import build_index
from sglc.runtime.constrained.matcher import RegexMatcher, measure_mask_overhead
from sglc.runtime.constrained.vocabulary import build_vocabulary, vocabulary_from_token_bytes

oracle = pytest.importorskip("regex")

PRINTABLE = [chr(c) for c in range(32, 127)]
MULTI = ['{"', "name", '":"', '","', "age", '":', "ab", "abc", "bc", "12", "3.", ".5", " the",
         "yes", "no", "may", "maybe", "0}", '"}', "hello", "ell", "a ", " b"]
HAND_STOP = 200  # hand vocabulary: ids 0..94 printable, 100.. multi-char, 200/203 stops
HAND_WIDTH = 230

REGEXES = [
    r'\{"name":"[a-z]{1,8}","age":(0|[1-9][0-9]{0,2})\}',
    r"[0-9]+(\.[0-9]+)?",
    r"(yes|no|maybe)",
    r"[a-c]{0,5}",
    r"(ab|a)(bc|c)?d",
    r"[a-z ]{1,12}",
]


def hand_vocabulary():
    tokens = {i: c.encode() for i, c in enumerate(PRINTABLE)}
    tokens.update({100 + i: t.encode() for i, t in enumerate(MULTI)})
    return vocabulary_from_token_bytes(tokens, HAND_WIDTH, [HAND_STOP, HAND_STOP + 3])


def allowed_ids(row: torch.Tensor | np.ndarray, width: int) -> np.ndarray:
    words = row.numpy() if isinstance(row, torch.Tensor) else row
    bits = np.unpackbits(words.reshape(-1).view(np.uint8), bitorder="little")
    assert not bits[width:].any(), "padding bits past the logits width must be zero"
    return np.flatnonzero(bits[:width])


def random_walk(matcher: RegexMatcher, rng: random.Random, max_steps: int = 60) -> bytes:
    row = torch.zeros(matcher.vocab.mask_words, dtype=torch.int32)
    for _ in range(max_steps):
        if matcher.is_finished():
            break
        matcher.fill_bitmask(row)
        allowed = [int(t) for t in allowed_ids(row, matcher.vocab.width)]
        stops = [t for t in allowed if t in matcher.vocab.stop_ids]
        assert bool(stops) == matcher.is_accepting()
        pick = rng.choice(stops) if stops and rng.random() < 0.3 else rng.choice(allowed)
        matcher.advance(pick)
    return matcher.text_bytes()


@pytest.mark.parametrize("pattern", REGEXES)
@pytest.mark.parametrize("threshold", [0.0, float("inf")])
def test_mask_allows_exactly_the_completable_tokens(pattern, threshold):
    vocab = hand_vocabulary()
    check_against_oracle(build_index(pattern, vocab), pattern, threshold)


@pytest.mark.parametrize(("pattern", "nonempty"), [
    (r"[a-c]{0,5}", r"[a-c]{1,5}"),
    (r"(yes|no)?", r"(yes|no)"),
    (r"(ab)*c?", r"(ab)+c?|c"),
])
def test_nullable_regex_via_accepts_empty_flag(pattern, nonempty):
    """The other way around the nullable pitfall: an index of the non-empty texts + a flag."""
    vocab = hand_vocabulary()
    compiled = build_index(pattern, vocab, form=f"(?:{nonempty})$", accepts_empty=True)
    assert compiled.accepts_empty and len(compiled.prefix_tokens) == 1  # the sentinel
    check_against_oracle(compiled, pattern, 0.0)


def check_against_oracle(compiled, pattern: str, threshold: float) -> None:
    """Random walks; at every step the mask must equal the completable tokens exactly."""
    vocab = compiled.vocab
    rng = random.Random(pattern)
    row = np.zeros(vocab.mask_words, dtype=np.int32)
    for _ in range(12):
        matcher = RegexMatcher(compiled, mask_cache_threshold_us=threshold)
        while not matcher.is_finished():
            text = matcher.text_bytes().decode()
            matcher.fill_bitmask(row)
            allowed = set(allowed_ids(row, vocab.width).tolist())
            for tid, data in enumerate(vocab.token_bytes):
                if data is None:
                    continue
                ok = oracle.fullmatch(pattern, text + data.decode(), partial=True) is not None
                assert (tid in allowed) == ok, (pattern, text, data)
            complete = re.fullmatch(pattern, text) is not None
            stops = {HAND_STOP, HAND_STOP + 3}
            assert stops <= allowed if complete else not allowed & stops
            assert matcher.is_accepting() == complete
            pick = HAND_STOP if complete and rng.random() < 0.25 else rng.choice(sorted(allowed))
            matcher.advance(pick)
        assert re.fullmatch(pattern, matcher.text_bytes().decode())


UNICODE_REGEXES = [
    r"(héllo|世界|🙂|wörld)( (héllo|世界|🙂|wörld)){0,3}",
    r'\{"name":"[a-zé]{1,8}","age":(0|[1-9][0-9]{0,2})\}',
    r"[^\n]{1,20}",
]


@pytest.mark.parametrize("pattern", UNICODE_REGEXES)
@pytest.mark.parametrize("which", ["byte_level", "sentencepiece"])
def test_random_walks_on_real_tokenizers_fullmatch(pattern, which):
    tok = byte_level_tokenizer() if which == "byte_level" else sentencepiece_tokenizer()
    vocab = build_vocabulary(tok, len(tok) + 37, [tok.eos_token_id])
    compiled = build_index(pattern, vocab)
    rng = random.Random(0)
    finished = 0
    for _ in range(25):
        matcher = RegexMatcher(compiled)
        text = random_walk(matcher, rng, max_steps=200)
        if matcher.is_finished():
            finished += 1
            assert re.fullmatch(pattern, text.decode("utf-8")), text
    assert finished >= 20


def test_mask_width_padding_and_special_ids():
    tok = byte_level_tokenizer()
    width = len(tok) + 45  # not a multiple of 32, wider than the tokenizer
    vocab = build_vocabulary(tok, width, [tok.eos_token_id])
    matcher = RegexMatcher(build_index(r"[a-z]{1,3}", vocab))
    row = torch.full((1, vocab.mask_words + 2), -1, dtype=torch.int32)
    matcher.fill_bitmask(row)
    allowed = allowed_ids(row[0, : vocab.mask_words].clone(), width)
    assert all(t < len(tok) for t in allowed)
    assert not set(allowed) & {0, 1, 2}
    assert (row[0, vocab.mask_words :] == -1).all(), "words past the row are left alone"
    with pytest.raises(ValueError, match="words"):
        matcher.fill_bitmask(torch.zeros(vocab.mask_words - 1, dtype=torch.int32))
    with pytest.raises(ValueError, match="int32"):
        matcher.fill_bitmask(torch.zeros(vocab.mask_words, dtype=torch.int64))


def test_bit_layout_matches_token_ids():
    vocab = hand_vocabulary()
    matcher = RegexMatcher(build_index("(yes|no)", vocab))
    row = np.zeros(vocab.mask_words, dtype=np.int32)
    matcher.fill_bitmask(row)
    expected = {PRINTABLE.index("y"), PRINTABLE.index("n"), 100 + MULTI.index("yes"),
                100 + MULTI.index("no")}
    assert set(allowed_ids(row, vocab.width).tolist()) == expected
    for t in expected:
        assert (int(row[t // 32]) >> (t % 32)) & 1


def test_several_stop_ids_only_in_final_states():
    vocab = hand_vocabulary()
    matcher = RegexMatcher(build_index(r"[0-9]+", vocab))
    assert not matcher.is_allowed(HAND_STOP) and not matcher.is_allowed(HAND_STOP + 3)
    with pytest.raises(ValueError, match="stop token"):
        matcher.advance(HAND_STOP + 3)
    matcher.advance(100 + MULTI.index("12"))
    row = np.zeros(vocab.mask_words, dtype=np.int32)
    matcher.fill_bitmask(row)
    assert {HAND_STOP, HAND_STOP + 3} <= set(allowed_ids(row, vocab.width).tolist())
    matcher.advance(HAND_STOP + 3)
    assert matcher.is_finished() and matcher.stopped
    matcher.fill_bitmask(row)
    assert set(allowed_ids(row, vocab.width).tolist()) == {HAND_STOP, HAND_STOP + 3}
    with pytest.raises(ValueError, match="already"):
        matcher.advance(PRINTABLE.index("1"))


def test_finished_without_stop_when_nothing_may_follow():
    vocab = hand_vocabulary()
    matcher = RegexMatcher(build_index("abc", vocab))
    matcher.advance(100 + MULTI.index("ab"))
    assert not matcher.is_accepting() and not matcher.is_finished()
    matcher.advance(PRINTABLE.index("c"))
    assert matcher.is_accepting() and matcher.is_finished() and not matcher.stopped
    open_ended = RegexMatcher(build_index("[a-z]+", vocab))
    open_ended.advance(PRINTABLE.index("q"))
    assert open_ended.is_accepting() and not open_ended.is_finished()


def test_disallowed_token_names_the_regex():
    vocab = hand_vocabulary()
    matcher = RegexMatcher(build_index("[0-9]+", vocab))
    with pytest.raises(ValueError, match=r"\[0-9\]\+"):
        matcher.advance(PRINTABLE.index("x"))
    assert matcher.tokens == [] and not matcher.is_allowed(PRINTABLE.index("x"))


def test_outlines_core_pitfalls_are_handled():
    vocab = hand_vocabulary()
    ids = [PRINTABLE.index(c) for c in "1.5"]
    decimal = RegexMatcher(build_index(r"[0-9]+(\.[0-9]+)?", vocab))
    decimal.advance_many(ids)
    assert decimal.is_accepting()
    anchored = RegexMatcher(build_index(r"^(ab|a)(bc|c)?d$", vocab))
    anchored.advance_many([100 + MULTI.index("abc"), PRINTABLE.index("d")])
    assert anchored.is_accepting()
    nullable = RegexMatcher(build_index(r"[a-c]{0,5}", vocab))  # matches "": sentinel start
    assert nullable.is_accepting() and nullable.is_allowed(HAND_STOP)
    row = np.zeros(vocab.mask_words, dtype=np.int32)
    nullable.fill_bitmask(row)
    assert PRINTABLE.index("\x21") not in allowed_ids(row, vocab.width)
    nullable.advance(100 + MULTI.index("abc"))
    nullable.rollback(1)
    nullable.advance(HAND_STOP)
    assert nullable.is_finished() and nullable.text_bytes() == b""


@pytest.mark.parametrize("max_rollback", [2, 32])
def test_rollback_matches_replay(max_rollback):
    vocab = hand_vocabulary()
    compiled = build_index(REGEXES[0], vocab)
    rng = random.Random(1)
    row_a = np.zeros(vocab.mask_words, dtype=np.int32)
    row_b = np.zeros(vocab.mask_words, dtype=np.int32)
    for _ in range(10):
        matcher = RegexMatcher(compiled, max_rollback=max_rollback)
        random_walk(matcher, rng, max_steps=rng.randint(1, 30))
        n = rng.randint(0, matcher.num_consumed)
        kept = matcher.tokens[: len(matcher.tokens) - max(0, n - int(matcher.stopped))]
        matcher.rollback(n)
        fresh = RegexMatcher(compiled)
        fresh.advance_many(kept)
        assert matcher.tokens == kept and matcher.state == fresh.state and not matcher.stopped
        matcher.fill_bitmask(row_a)
        fresh.fill_bitmask(row_b)
        assert np.array_equal(row_a, row_b)
        random_walk(matcher, rng)  # the rolled-back matcher still works
    with pytest.raises(ValueError, match="roll back"):
        RegexMatcher(compiled).rollback(1)


def test_cached_and_uncached_masks_agree():
    tok = byte_level_tokenizer()
    vocab = build_vocabulary(tok, len(tok), [tok.eos_token_id])
    compiled = build_index(UNICODE_REGEXES[1], vocab)
    cached = RegexMatcher(compiled, mask_cache_threshold_us=0.0)
    plain = RegexMatcher(build_index(UNICODE_REGEXES[1], vocab),
                         mask_cache_threshold_us=float("inf"))
    rng = random.Random(3)
    a = torch.zeros(vocab.mask_words, dtype=torch.int32)
    b = torch.zeros(1, vocab.mask_words, dtype=torch.int32)
    for _ in range(3):
        while not cached.is_finished():
            cached.fill_bitmask(a)
            cached.fill_bitmask(a)  # second fill: from the cache
            plain.fill_bitmask(b)
            assert torch.equal(a, b[0])
            pick = int(rng.choice(allowed_ids(a, vocab.width)))
            cached.advance(pick)
            plain.advance(pick)
        cached.reset()
        plain.reset()
    assert len(compiled.extras["masks"]) > 0


def test_measure_mask_overhead_smoke():
    stats = measure_mask_overhead(3000, fills=200)
    assert stats["vocab_size"] == 3001
    assert 0 < stats["p50_us"] <= stats["p99_us"]
