"""Jump-forward: forced strings, retokenization at the boundary, consistent matcher state."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
import torch
from test_constrained_vocabulary import byte_level_tokenizer, sentencepiece_tokenizer

from sglc.runtime.constrained.index_cache import IndexCache, build_index
from sglc.runtime.constrained.jump_forward import JumpForward, JumpForwarder, make_encoder
from sglc.runtime.constrained.matcher import RegexMatcher
from sglc.runtime.constrained.vocabulary import build_vocabulary, vocabulary_from_token_bytes

PERSON = r'\{"name":"[a-z]{1,8}","age":(0|[1-9][0-9]{0,2})\}'
TARGETS = ['{"name":"bob","age":42}', '{"name":"kim","age":0}', '{"name":"xavier","age":999}']


def _tokenizer(which: str):
    return byte_level_tokenizer() if which == "byte_level" else sentencepiece_tokenizer()


def _setup(which: str, pattern: str = PERSON):
    tok = _tokenizer(which)
    vocab = build_vocabulary(tok, len(tok), [tok.eos_token_id])
    return vocab, build_index(pattern, vocab), JumpForwarder(make_encoder(tok))


def _model_step(matcher: RegexMatcher, target: bytes) -> int:
    """A deterministic 'model': the longest allowed token that continues ``target``."""
    vocab = matcher.vocab
    done = matcher.text_bytes()
    rest = target[len(done):]
    if not rest:
        return vocab.eos_id
    fits = [t for t, b in enumerate(vocab.token_bytes)
            if b and rest.startswith(b) and matcher.is_allowed(t)]
    return max(fits, key=lambda t: len(vocab.token_bytes[t]))


def _decode(matcher, target: bytes, jumper: JumpForwarder | None) -> tuple[bytes, int, int]:
    """Run to the end; returns (text, model steps, jump-forward steps)."""
    steps = jumps = 0
    while not matcher.is_finished():
        step = jumper.propose(matcher) if jumper else None
        if step is not None:
            before = matcher.text_bytes()
            jumper.apply(matcher, step)
            assert matcher.text_bytes().startswith(before[: len(before) - 64])
            assert len(matcher.text_bytes()) > len(before)
            jumps += 1
            continue
        matcher.advance(_model_step(matcher, target))
        steps += 1
    return matcher.text_bytes(), steps, jumps


@pytest.mark.parametrize("which", ["byte_level", "sentencepiece"])
def test_forced_strings_of_a_fixed_key_object(which):
    vocab, compiled, jumper = _setup(which)
    paths = jumper.paths(compiled)
    matcher = RegexMatcher(compiled)
    assert paths.forced_for(matcher) == b'{"name":"'
    text = b'{"name":"bo'
    matcher.advance_many(_greedy(vocab, text))
    assert paths.forced_for(matcher) == b""  # a letter or the closing quote
    matcher.advance_many(_greedy(vocab, b'b"'))
    assert paths.forced_for(matcher) == b',"age":'
    matcher.advance_many(_greedy(vocab, b',"age":0'))
    assert paths.forced_for(matcher) == b"}"
    matcher.advance_many(_greedy(vocab, b"}"))
    assert matcher.is_finished() and paths.forced_for(matcher) == b""


def _greedy(vocab, data: bytes) -> list[int]:
    """Greedy longest-match tokenization over the vocabulary's byte strings."""
    out = []
    while data:
        best = max((b for b in vocab.bytes_to_ids if data.startswith(b)), key=len)
        out.append(vocab.bytes_to_ids[best][0])
        data = data[len(best):]
    return out


@pytest.mark.parametrize("which", ["byte_level", "sentencepiece"])
@pytest.mark.parametrize("target", TARGETS)
def test_jump_forward_reaches_the_same_text_in_fewer_steps(which, target):
    vocab, compiled, jumper = _setup(which)
    plain_text, plain_steps, _ = _decode(RegexMatcher(compiled), target.encode(), None)
    matcher = RegexMatcher(compiled)
    jf_text, jf_steps, jumps = _decode(matcher, target.encode(), jumper)
    assert plain_text == jf_text == target.encode()
    assert jumps >= 1 and jf_steps < plain_steps
    replay = RegexMatcher(compiled)  # the final token sequence is a valid constrained walk
    replay.advance_many(matcher.tokens)
    assert replay.state == matcher.state


@pytest.mark.parametrize("which", ["byte_level", "sentencepiece"])
def test_random_model_with_jump_forward_stays_in_the_language(which):
    pattern = r'\{"id":(0|[1-9][0-9]{0,3}),"tag":"(alpha|beta|gamma)","ok":(true|false)\}'
    vocab, compiled, jumper = _setup(which, pattern)
    rng = random.Random(7)
    row = torch.zeros(vocab.mask_words, dtype=torch.int32)
    jumps = 0
    for _ in range(15):
        matcher = RegexMatcher(compiled)
        while not matcher.is_finished():
            step = jumper.propose(matcher)
            if step is not None:
                jumper.apply(matcher, step)
                jumps += 1
                continue
            matcher.fill_bitmask(row)
            bits = np.unpackbits(row.numpy().view(np.uint8), bitorder="little")
            matcher.advance(int(rng.choice(np.flatnonzero(bits))))
        assert re.fullmatch(pattern, matcher.text_bytes().decode())
    assert jumps >= 15


def _hand(tokens: list[str], pattern: str, window: int = 4):
    vocab = vocabulary_from_token_bytes({i: t.encode() for i, t in enumerate(tokens)}, 64, [63])
    compiled = build_index(pattern, vocab)

    def encode(text: str) -> list[int]:
        return _greedy(vocab, text.encode())

    return vocab, compiled, JumpForwarder(encode, window=window)


def test_boundary_token_that_could_span_is_backed_off():
    tokens = ["a", "b", "c", "d", "e", "x", "ab", "abc", "bc"]
    # "ab" is forced; "abc" is an allowed longer token starting there: keep nothing.
    _, compiled, jumper = _hand(tokens, "ab[cd]x")
    assert jumper.paths(compiled).forced_for(RegexMatcher(compiled)) == b"ab"
    assert jumper.propose(RegexMatcher(compiled)) is None
    # "abc" is not allowed after "ab" here, so "ab" is safe to append.
    _, compiled, jumper = _hand(tokens, "ab[de]x")
    assert jumper.propose(RegexMatcher(compiled)) == JumpForward(0, [tokens.index("ab")])


def test_only_the_spanning_tail_is_backed_off():
    tokens = ["a", "b", "c", "k", "y", "z", "ab", "yz", "zk", "c,"]
    vocab, compiled, jumper = _hand(tokens, "abyz[kc]")
    step = jumper.propose(RegexMatcher(compiled))
    # Retokenized "abyz" = [ab, yz]; "zk" starts inside "yz", not at a boundary; "yz" itself
    # cannot be extended (no "yzk" token): everything is kept.
    assert step == JumpForward(0, [tokens.index("ab"), tokens.index("yz")])
    tokens.append("yzk")
    vocab, compiled, jumper = _hand(tokens, "abyz[kc]")
    assert jumper.propose(RegexMatcher(compiled)) == JumpForward(0, [tokens.index("ab")])


def test_retokenization_merges_across_the_generated_tokens():
    tokens = ['"', ",", "a", "g", "e", ":", "0", '","', "age", '":', "b", "{"]
    vocab, compiled, jumper = _hand(tokens, r'"[ab]{1,3}","age":0')
    matcher = RegexMatcher(compiled)
    matcher.advance_many([tokens.index('"'), tokens.index("b"), tokens.index('"')])
    step = jumper.propose(matcher)
    # The model's lone '"' merges with the forced ',"age":0' into '","' - it is replaced.
    assert step == JumpForward(1, [tokens.index('","'), tokens.index("age"),
                                   tokens.index('":'), tokens.index("0")])
    jumper.apply(matcher, step)
    assert matcher.text_bytes() == b'"b","age":0' and matcher.is_finished()
    assert matcher.state == _walked(compiled, matcher.tokens)


def _walked(compiled, ids):
    fresh = RegexMatcher(compiled)
    fresh.advance_many(ids)
    return fresh.state


def test_utf8_forced_bytes_cut_at_a_character_boundary():
    tokens = ['"', "x", "é", "è", "\xe9".encode().decode()]
    vocab = vocabulary_from_token_bytes(
        {0: b'"', 1: b"x", 2: "é".encode(), 3: "è".encode(), 4: b"\xc3", 5: b"\xa9", 6: b"\xa8"},
        64, [63])
    del tokens
    compiled = build_index('"(é|è)x', vocab)
    jumper = JumpForwarder(lambda text: _greedy(vocab, text.encode()))
    matcher = RegexMatcher(compiled)
    assert jumper.paths(compiled).forced_for(matcher) == b'"\xc3'
    assert jumper.propose(matcher) == JumpForward(0, [0])  # '"' only; \xc3 waits for a choice
    matcher.advance_many([0, 4])  # the model wrote half a character
    assert jumper.propose(matcher) is None  # é or è: nothing forced
    matcher.advance(5)
    assert jumper.propose(matcher) == JumpForward(2, [2, 1])  # retokenized: "é" + "x"


def test_disabled_jump_forward_never_proposes():
    tok = byte_level_tokenizer()
    vocab = build_vocabulary(tok, len(tok), [tok.eos_token_id])
    jumper = JumpForwarder(make_encoder(tok), enabled=False)
    assert jumper.propose(RegexMatcher(build_index(PERSON, vocab))) is None


def test_stopped_or_free_states_have_nothing_to_jump():
    vocab, compiled, jumper = _setup("byte_level", r"[a-z]{1,4}")
    matcher = RegexMatcher(compiled)
    assert jumper.propose(matcher) is None
    matcher.advance_many(_greedy(vocab, b"ab"))
    matcher.advance(vocab.eos_id)
    assert jumper.propose(matcher) is None


def test_byte_indices_come_from_the_index_cache(tmp_path):
    tok = byte_level_tokenizer()
    vocab = build_vocabulary(tok, len(tok), [tok.eos_token_id])
    with IndexCache(vocab, cache_dir=tmp_path) as cache:
        compiled = cache.get(PERSON)
        jumper = JumpForwarder(make_encoder(tok), index_cache=cache)
        assert jumper.propose(RegexMatcher(compiled)) is not None
        assert cache.stats.builds == 2  # the token index and the byte index
        assert jumper.paths(compiled) is jumper.paths(compiled)


@pytest.mark.parametrize("flag", [False, True])
def test_nothing_is_forced_where_the_text_may_end(flag):
    tokens = ["a", "b", "c", "abc", "x"]
    vocab = vocabulary_from_token_bytes({i: t.encode() for i, t in enumerate(tokens)}, 64, [63])
    if flag:
        compiled = build_index("(abc)?x?", vocab, form="(?:abcx?|x)$", accepts_empty=True)
    else:
        compiled = build_index("(abc)?x?", vocab)  # sentinel start
    jumper = JumpForwarder(lambda text: _greedy(vocab, text.encode()))
    matcher = RegexMatcher(compiled)
    assert matcher.is_accepting() and jumper.propose(matcher) is None
    matcher.advance(tokens.index("a"))
    assert jumper.propose(matcher) == JumpForward(1, [tokens.index("abc")])


@pytest.mark.parametrize("which", ["byte_level", "sentencepiece"])
def test_encoder_matches_the_tokenizers_own_encode(which):
    """The encoder calls the Rust backend directly; its ids are the wrapper's."""
    tok = _tokenizer(which)
    encode = make_encoder(tok)
    for text in ['{"name":"bob"', ' leading space', 'tab\there\nnew line', 'ünï cödé ✓', '']:
        assert encode(text) == list(tok.encode(text, add_special_tokens=False)), text
