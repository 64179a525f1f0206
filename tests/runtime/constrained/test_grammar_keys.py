"""The grammar path's mask cache (`grammar_keys`): every mask a cached matcher gives equals the
one llguidance computes for the same text with no cache, on random walks with rollbacks over
the five test grammars and over grammars whose keys stop (an ambiguous lexeme) or never start
(no LALR(1) tables, an llguidance JSON grammar)."""

from __future__ import annotations

import dataclasses
import random
import sys
from pathlib import Path

import numpy as np
import pytest

from sglc.constraints.grammar import lark_grammar, schema_grammar
from sglc.runtime.constrained.grammar_cache import CompiledGrammar, Tokenizers, build_grammar
from sglc.runtime.constrained.grammar_keys import for_grammar
from sglc.runtime.constrained.grammar_matcher import GrammarMatcher
from sglc.runtime.constrained.matcher import synthetic_token_bytes
from sglc.runtime.constrained.vocabulary import TokenVocabulary, vocabulary_from_token_bytes

sys.path.append(str(Path(__file__).parents[1]))
from grammars import ARITHMETIC, GRAMMARS, parses  # noqa: E402

SIZE = 4096
# "if" is both a keyword and a NAME at the start of a statement: the keys stop there
KEYWORD = 'start: stmt+\nstmt: "if" NAME ";" | NAME "=" NAME ";"\nNAME: /[a-z]{1,6}/\n%ignore " "\n'
NOT_LALR = 'start: a | b\na: "x" "y"*\nb: "x" "z"*\n'  # a reduce/reduce conflict after "x"
SCHEMA = ('{"$defs": {"n": {"type": "object", "properties": {"k": {"$ref": "#/$defs/n"}}}},'
          ' "$ref": "#/$defs/n"}')


@pytest.fixture(scope="module")
def setup() -> tuple[TokenVocabulary, Tokenizers]:
    vocab = vocabulary_from_token_bytes(synthetic_token_bytes(SIZE), SIZE + 1, [SIZE])
    return vocab, Tokenizers(vocab, None)


def _compile(setup, grammar: str) -> tuple[CompiledGrammar, CompiledGrammar]:
    """(the grammar compiled with its keys, the same grammar with no keys: no mask cache)."""
    vocab, tokenizers = setup
    compiled = build_grammar(grammar, vocab, tokenizers)
    return compiled, dataclasses.replace(compiled, keys=None, extras={})


def allowed_text(row: np.ndarray, vocab: TokenVocabulary) -> tuple[np.ndarray, list[int]]:
    """(the row's bits over the vocabulary, the text token ids it allows)."""
    bits = np.unpackbits(row.view(np.uint8), bitorder="little")[: vocab.width]
    return bits, [int(t) for t in np.flatnonzero(bits) if int(t) not in vocab.stop_ids]


def _walk_and_compare(setup, grammar: str, walks: int, seed: int = 0) -> tuple[int, int, list]:
    """Random walks (uniform over allowed text tokens, a random rollback one step in ten)
    with a cached matcher and an uncached one in lockstep: masks and `is_allowed` must agree.
    Returns (fills, fills the cache answered, finished texts)."""
    vocab, _ = setup
    compiled, plain = _compile(setup, grammar)
    rng = random.Random(seed)
    row_a = np.zeros(vocab.mask_words, dtype=np.int32)
    row_b = row_a.copy()
    fills = hits = 0
    done = []
    for _ in range(walks):
        cached = GrammarMatcher(compiled, mask_cache_threshold_us=0)
        ref = GrammarMatcher(plain)
        for _ in range(48):
            hits += cached._key is not None and cached._masks.get(cached._key) is not None
            cached.fill_bitmask(row_a)
            ref.fill_bitmask(row_b)
            fills += 1
            assert np.array_equal(row_a, row_b), cached.text_bytes()
            bits, text = allowed_text(row_b, vocab)
            if bits[vocab.eos_id] and (not text or rng.random() < 0.2):
                done.append(ref.text_bytes().decode())
                break
            other = rng.randrange(vocab.width)
            assert cached.is_allowed(other) == ref.is_allowed(other)
            advance_both(rng, cached, ref, text)
    return fills, hits, done


def advance_both(rng: random.Random, a: GrammarMatcher, b: GrammarMatcher,
                 text: list[int]) -> None:
    """One step of a lockstep walk: both matchers take the same random token of `text`,
    and one time in ten both roll back the same random number of tokens."""
    token = rng.choice(text)
    a.advance(token)
    b.advance(token)
    if rng.random() < 0.1 and a.num_consumed > 1:
        n = rng.randint(1, a.num_consumed)
        a.rollback(n)
        b.rollback(n)


@pytest.mark.parametrize("name", sorted(GRAMMARS))
def test_cached_masks_equal_llguidance_on_walks_with_rollbacks(setup, name):
    grammar = lark_grammar(GRAMMARS[name])
    fills, hits, done = _walk_and_compare(setup, grammar, walks=40)
    assert hits > fills // 4  # the cache answers: positions recur
    assert all(parses(GRAMMARS[name], text) for text in done)


def test_keys_stop_at_an_ambiguous_lexeme_and_masks_stay_right(setup):
    compiled, _ = _compile(setup, lark_grammar(KEYWORD))
    keys = compiled.keys
    assert keys is not None
    vocab = compiled.vocab
    assert _key_of(keys, vocab, b"ab=c; ") is not None  # NAME = NAME ; and a space
    assert _key_of(keys, vocab, b"ab=c; i") is not None
    # "if" then a space: the keyword "if", or NAME "if" (both lexemes end there)
    assert _key_of(keys, vocab, b"ab=c; if ") is None
    _walk_and_compare(setup, lark_grammar(KEYWORD), walks=20)


def test_grammars_without_lalr_tables_or_lark_text_get_no_keys(setup):
    assert for_grammar(NOT_LALR) is None
    compiled, _ = _compile(setup, lark_grammar(NOT_LALR))
    assert compiled.keys is None
    _walk_and_compare(setup, lark_grammar(NOT_LALR), walks=10)
    assert _compile(setup, schema_grammar(SCHEMA))[0].keys is None


def _key_of(keys, vocab: TokenVocabulary, text: bytes) -> int | None:
    """The key after `text`, fed one byte per token."""
    key = keys.start
    for i in range(len(text)):
        key = keys.step(key, vocab.bytes_to_ids[text[i:i + 1]][0], text[i:i + 1])
    return key


def test_equal_keys_for_texts_that_differ_only_inside_a_lexeme(setup):
    keys = for_grammar(ARITHMETIC)

    def key_of(text: bytes) -> int | None:
        return _key_of(keys, setup[0], text)

    assert key_of(b"(12") == key_of(b"(45")  # the same NUMBER automaton state, one "(" open
    assert key_of(b"(12") != key_of(b"((12")  # a second "(" to close
    assert key_of(b"1+2") == key_of(b"34-5")  # the same rules, the same lexer state
    assert key_of(b"1+") is not None and key_of(b"1++") is None  # "1++" is not arithmetic


# consumed without masks, with rollbacks: llguidance 1.9's own rollback leaves this matcher
# in a state whose mask after "...-(737" lacks ")" (found by the walks above at 8192 tokens)
REPLAY = [b"55", b"0", b".1", b"8-", -1, b"4", b"/", b"3", b"87", b".1", b"5", -6, b"3", b"*",
          b"0", b"3", b"9", b"+", b"8", b"51", b"*", b"01", b"4", b"-", b"5", b"8-", b"38", b"/",
          b"2", b"9", b"8", b"*", b"1", b"51", b".7", -13, b".", -10, b"*", b"-", b"7", b"0",
          b"8", "fill", b"+", b"(", -11, b"6", b"-", b"(", b"73", b"7"]


def test_rollback_after_tokens_consumed_without_masks():
    vocab = vocabulary_from_token_bytes(synthetic_token_bytes(8192), 8193, [8192])
    setup = (vocab, Tokenizers(vocab, None))
    compiled, plain = _compile(setup, lark_grammar(ARITHMETIC))
    row = np.zeros(vocab.mask_words, dtype=np.int32)
    for grammar in (compiled, plain):
        matcher = GrammarMatcher(grammar)
        for step in REPLAY:
            if step == "fill":
                matcher.fill_bitmask(row)
            elif isinstance(step, int):
                matcher.rollback(-step)
            else:  # consumed as a cache hit would: no mask computed, no validation
                token = vocab.bytes_to_ids[step][0]
                assert matcher._llg.consume_token(token)
                matcher._tokens.append(token)
                matcher._key_before.append(None)
        assert matcher.text_bytes().endswith(b"-(737")
        fresh = GrammarMatcher(plain)
        for token in matcher.tokens:
            fresh.advance(token)
        expected = row.copy()
        fresh.fill_bitmask(expected)
        matcher._key = None  # the llguidance state itself, not a cached row
        matcher.fill_bitmask(row)
        assert np.array_equal(row, expected)
        assert matcher.is_allowed(vocab.bytes_to_ids[b")"][0])


def test_past_max_keys_new_positions_get_no_key(setup):
    keys = for_grammar(ARITHMETIC, max_keys=4)
    vocab = setup[0]
    assert _key_of(keys, vocab, b"1") is not None
    assert _key_of(keys, vocab, b"1+(") is not None  # with the start: four positions
    assert _key_of(keys, vocab, b"1+(2") is None  # the fifth: over the bound
    assert _key_of(keys, vocab, b"1") is not None  # positions named before keep their names
    assert len(keys) == 4


def test_terminals_python_and_rust_read_apart_give_no_keys():
    # Python's \s holds \x1c-\x1f, Rust's does not; \w differs on combining marks
    assert for_grammar('start: A B\nA: /x\\s/\nB: "y"\n') is None
    assert for_grammar('start: WORD (" " WORD)*\nWORD: /\\w+/\n') is None
    assert for_grammar('start: WORD (" " WORD)*\nWORD: /[a-z0-9_]+/\n') is not None
    # imported terminals: Lark's common.lark, llguidance's own built-in definitions
    assert for_grammar('start: NUMBER\n%import common.NUMBER\n') is None


def test_a_cache_that_rarely_hits_turns_itself_off(setup):
    grammar = lark_grammar(ARITHMETIC)
    compiled, plain = _compile(setup, grammar)
    compiled.keys.probe = ((10, 0.0), (30, 1.01))  # no cache can hit this often: off at 30
    vocab = setup[0]
    row, expected = (np.zeros(vocab.mask_words, dtype=np.int32) for _ in range(2))
    matcher, ref = GrammarMatcher(compiled, mask_cache_threshold_us=0), GrammarMatcher(plain)
    rng = random.Random(3)
    for _ in range(60):
        matcher.fill_bitmask(row)
        ref.fill_bitmask(expected)
        assert np.array_equal(row, expected)
        _, text = allowed_text(expected, vocab)
        token = rng.choice(text)
        matcher.advance(token)
        ref.advance(token)
    assert compiled.keys.fills == 30 and not compiled.keys.caching
    assert matcher._key is None  # no longer followed
    cached = len(compiled.extras["masks"])
    GrammarMatcher(compiled).fill_bitmask(row)
    assert len(compiled.extras["masks"]) == cached  # nothing more is kept


@pytest.mark.parametrize(("hits", "caching", "fills"), [
    ([False, False, False, True], False, 4),  # a quarter at the early checkpoint: off there
    ([True, True, False, False] + [False] * 4, False, 8),  # half, then a quarter: off later
    ([True, True, False, False] + [True, False] * 4, True, 8),  # half at both: kept
])
def test_the_probe_stops_the_cache_at_the_first_checkpoint_it_misses(hits, caching, fills):
    keys = for_grammar(ARITHMETIC)
    keys.probe = ((4, 0.5), (8, 0.5))
    for hit in hits:
        keys.note_fill(hit)
    assert keys.caching is caching and keys.fills == fills


@pytest.mark.parametrize(("text", "pumping"), [
    (GRAMMARS["arithmetic"], "(-"),  # `1-` then unary minuses; `(((`; not `)`, `+`, digits
    (GRAMMARS["json"], "["),
    (GRAMMARS["nested_lists"], "["),
    (GRAMMARS["toy_language"], "("),
    (GRAMMARS["sql"], ""),
    ('start: "-" NAME\nNAME: /[a-z]+/\n', ""),  # one `-` only
    ('start: item+\nitem: "-" | "--"\n', ""),  # `--` would glue two `-` into one lexeme
    # `-` begins `-a`, but `--` begins no text: `y` derives none (the tables shift `-` on)
    ('start: "-" "a" | "-" "-" y\ny: "-" y\n', ""),
    # runs of `[` and `]` go on here too, but a list's next item comes after a reduction,
    # which reads below the top of the stack: not proven, so not claimed
    ('start: ("[" | "]")* "."\n', ""),
    (KEYWORD, ""),  # `;` ends a statement, the next must start with a name
])
def test_a_character_pumps_where_a_run_of_it_goes_on_wherever_one_can(text, pumping):
    keys = for_grammar(text)
    assert keys is not None
    assert "".join(c for c in map(chr, range(32, 127)) if keys.pumps(c)) == "".join(
        sorted(pumping))
