"""GrammarMatcher (llguidance) behind the BaseMatcher contract, on real small tokenizers:
masks against Lark, stop ids, rejected tokens, rollback, forced tokens, the grammar cache,
the batched mask buffer with both kinds of matcher, and the stage failing a grammar alone."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from test_constrained_vocabulary import byte_level_tokenizer, sentencepiece_tokenizer

from sglc.constraints.grammar import lark_grammar
from sglc.kernels.bitmask import apply_token_bitmask
from sglc.runtime.constrained.grammar_cache import GrammarBuildError, GrammarCache
from sglc.runtime.constrained.grammar_matcher import GrammarMatcher
from sglc.runtime.constrained.index_cache import build_index
from sglc.runtime.constrained.jump_forward import make_encoder
from sglc.runtime.constrained.masks import MaskBuffer
from sglc.runtime.constrained.matcher import RegexMatcher
from sglc.runtime.constrained.stage import ConstraintStage
from sglc.runtime.constrained.vocabulary import TokenVocabulary, build_vocabulary
from sglc.runtime.core import FinishReason, SamplingParams
from sglc.runtime.req import Req, ReqConstraint

sys.path.append(str(Path(__file__).parents[1]))
from grammars import ARITHMETIC, NESTED_LISTS, SQL, parses  # noqa: E402

LIST_OF_NUMBERS = 'start: "[" NUM ("," NUM)* "]"\nNUM: /[0-9]{1,2}/\n'


@pytest.fixture(scope="module", params=["bpe", "sp"])
def setup(request) -> tuple[TokenVocabulary, GrammarCache]:
    tok = byte_level_tokenizer() if request.param == "bpe" else sentencepiece_tokenizer()
    # two stop ids: llguidance knows one, the matcher adds the other
    vocab = build_vocabulary(tok, len(tok) + 3, [tok.eos_token_id, len(tok) + 1])
    cache = GrammarCache(vocab, make_encoder(tok))
    yield vocab, cache
    cache.close()


def _matcher(setup, grammar: str) -> GrammarMatcher:
    vocab, cache = setup
    return GrammarMatcher(cache.get(lark_grammar(grammar), timeout=60))


def _allowed(matcher, vocab: TokenVocabulary) -> set[int]:
    row = torch.zeros(vocab.mask_words, dtype=torch.int32)
    matcher.fill_bitmask(row)
    bits = np.unpackbits(row.numpy().view(np.uint8), bitorder="little")[: vocab.width]
    return set(np.flatnonzero(bits).tolist())


def test_random_walks_end_in_sentences_lark_parses(setup):
    vocab, _ = setup
    rng = random.Random(0)
    stops = set(vocab.stop_ids)
    num_sentences = 0
    for grammar in (SQL, ARITHMETIC, NESTED_LISTS):
        for _ in range(5):
            m = _matcher(setup, grammar)
            for _ in range(200):
                allowed = _allowed(m, vocab)
                assert allowed, "a live matcher always allows something"
                if allowed & stops and (rng.random() < 0.3 or allowed <= stops):
                    m.advance(min(allowed & stops))
                    break
                text = sorted(allowed - stops)
                m.advance(rng.choice(text))
            if m.stopped:
                assert parses(grammar, vocab.decode(m.tokens).decode()), vocab.decode(m.tokens)
                num_sentences += 1
    assert num_sentences >= 10


def test_stop_ids_only_where_the_text_is_complete(setup):
    vocab, _ = setup
    m = _matcher(setup, LIST_OF_NUMBERS)
    stops = set(vocab.stop_ids)
    assert not _allowed(m, vocab) & stops and not m.is_accepting()
    m.advance_many(_ids(vocab, b"[1]"))
    assert m.is_accepting() and m.is_finished()
    assert _allowed(m, vocab) == stops  # both stop ids, nothing else
    m.advance(vocab.stop_ids[-1])
    assert m.stopped and m.num_consumed == len(m.tokens) + 1
    assert _allowed(m, vocab) == stops
    with pytest.raises(ValueError, match="already consumed a stop token"):
        m.advance(vocab.stop_ids[0])


def test_a_rejected_token_raises_and_leaves_the_matcher_usable(setup):
    vocab, _ = setup
    m = _matcher(setup, LIST_OF_NUMBERS)
    m.advance_many(_ids(vocab, b"[1"))
    before = _allowed(m, vocab)
    bad = _ids(vocab, b"x")[0]
    assert not m.is_allowed(bad) and bad not in before
    with pytest.raises(ValueError, match="not allowed here by the grammar"):
        m.advance(bad)
    with pytest.raises(ValueError, match="before the text completes"):
        m.advance(vocab.stop_ids[0])
    assert _allowed(m, vocab) == before
    m.advance_many(_ids(vocab, b",2]"))
    assert m.is_accepting()


def test_rollback_restores_masks_and_state(setup):
    vocab, _ = setup
    m = _matcher(setup, ARITHMETIC)
    masks = [_allowed(m, vocab)]
    for tid in _ids(vocab, b"(1+2)*3"):
        m.advance(tid)
        masks.append(_allowed(m, vocab))
    m.advance(vocab.stop_ids[0])
    states = set()
    for k in range(len(masks) - 1, -1, -1):
        m.rollback(1)
        states.add(m.state)
        assert _allowed(m, vocab) == masks[k]
    assert m.tokens == [] and not m.stopped and len(states) == len(masks)
    with pytest.raises(ValueError, match="cannot roll back 1 of 0"):
        m.rollback(1)


def test_forced_tokens_spell_the_forced_text(setup):
    vocab, _ = setup
    m = _matcher(setup, 'start: "SELECT name FROM " T ";"\nT: "users" | "orders"\n')
    forced = m.forced_tokens()
    assert vocab.decode(forced) == b"SELECT name FROM "
    m.advance_many(forced)
    assert m.forced_tokens() == []  # users or orders: a choice
    m.advance_many(_ids(vocab, b"users"))
    assert vocab.decode(m.forced_tokens()) == b";"


def test_the_cache_compiles_once_and_fails_a_bad_grammar_with_its_reason(setup):
    _, cache = setup
    grammar = lark_grammar('start: "a"+\n')
    first = cache.get(grammar, timeout=60)
    builds = cache.num_builds
    assert cache.get(grammar, timeout=60) is first and cache.num_builds == builds
    with pytest.raises(GrammarBuildError, match='unknown name: "nope"'):
        cache.get('{"grammars": [{"lark_grammar": "start: nope"}]}', timeout=60)


def test_the_mask_buffer_fills_regex_and_grammar_rows_alike(setup):
    vocab, _ = setup
    regex = RegexMatcher(build_index("[0-9]{2}", vocab))
    grammar = _matcher(setup, LIST_OF_NUMBERS)
    buffer = MaskBuffer(vocab.mask_words)
    rows = buffer.fill([grammar, regex, grammar])
    assert torch.equal(rows[0], rows[2])
    for k, m in enumerate([grammar, regex]):
        alone = torch.zeros(vocab.mask_words, dtype=torch.int32)
        m.fill_bitmask(alone)
        assert torch.equal(rows[k], alone)
    logits = torch.zeros(2, vocab.width)
    apply_token_bitmask(logits, rows[:2].clone(), torch.tensor([0, 1]))
    assert set(torch.isfinite(logits[0]).nonzero().flatten().tolist()) == _allowed(grammar, vocab)


def test_the_stage_fails_a_grammar_that_does_not_compile_alone(tmp_path):
    tok = byte_level_tokenizer()
    stage = ConstraintStage(tok, len(tok), [tok.eos_token_id], cache_dir=str(tmp_path),
                            room=lambda req, n: req.params.max_new_tokens - n,
                            apply_bitmask=apply_token_bitmask)
    params = SamplingParams(temperature=0, max_new_tokens=16)
    bad, good = (Req(rid, 0, [1, 2], params, frozenset([tok.eos_token_id]))
                 for rid in ("bad", "good"))
    bad.constraint = ReqConstraint(grammar='{"grammars": [{"lark_grammar": "start: nope"}]}')
    good.constraint = ReqConstraint(grammar=lark_grammar(LIST_OF_NUMBERS))
    stage.add([bad])
    stage.add([good])
    got: dict[str, object] = {}
    deadline = time.monotonic() + 60
    while len(got) < 2 and time.monotonic() < deadline:
        got.update({req.rid: rewrite for req, rewrite in stage.take_built(wait_for_one=True)})
    stage.close()
    assert bad.finish_reason is FinishReason.ABORT and "nope" in bad.error
    assert good.finish_reason is None and isinstance(good.constraint.matcher, GrammarMatcher)
    assert got["good"].tokens and stage.vocab.decode(got["good"].tokens) == b"["  # forced


def _ids(vocab: TokenVocabulary, text: bytes) -> list[int]:
    """One single-byte token per byte (every byte has one in these vocabularies)."""
    return [vocab.bytes_to_ids[bytes([b])][0] for b in text]
