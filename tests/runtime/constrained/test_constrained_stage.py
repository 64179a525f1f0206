"""The constraint stage's interface to the engine core, on a real (small) tokenizer:
take_built (matchers and the jump over a forced start), plan, mask, after_token."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from test_constrained_vocabulary import byte_level_tokenizer

from sglc.kernels.bitmask import apply_token_bitmask
from sglc.runtime.constrained.stage import FULL_LOGITS, STOP, ConstraintStage, LogitsPlan
from sglc.runtime.core import FinishReason, ForwardMode, SamplingParams
from sglc.runtime.req import Req, ReqConstraint, ScheduledBatch

GREEDY = SamplingParams(temperature=0, max_new_tokens=32)


@pytest.fixture
def stage(tmp_path):
    tok = byte_level_tokenizer()
    stage = ConstraintStage(
        tok, len(tok), [tok.eos_token_id], cache_dir=str(tmp_path),
        room=lambda req, num_output: req.params.max_new_tokens - num_output,
        apply_bitmask=apply_token_bitmask,
    )
    yield stage
    stage.close()


def _req(regex: str | None, params: SamplingParams = GREEDY, rid: str = "r") -> Req:
    req = Req(rid, 0, [1, 2, 3], params, frozenset([byte_level_tokenizer().eos_token_id]))
    req.constraint = None if regex is None else ReqConstraint(regex)
    return req


def _built(stage: ConstraintStage, *reqs: Req) -> dict[int, object]:
    """Add each request as its own group; wait until all are built; rewrites by id(req)."""
    for req in reqs:
        stage.add([req])
    got: dict[int, object] = {}
    deadline = time.monotonic() + 60
    while len(got) < len(reqs) and time.monotonic() < deadline:
        got.update({id(req): rewrite for req, rewrite in stage.take_built(wait_for_one=True)})
    assert len(got) == len(reqs) and stage.is_idle
    return got


def _apply(req: Req, rewrite) -> None:
    """What the engine core does with a rewrite's tokens (and a stop)."""
    if rewrite.is_jump:
        del req.output_ids[len(req.output_ids) - rewrite.num_drop :]
        req.output_ids += rewrite.tokens
    if rewrite.is_done:
        req.finish_reason = FinishReason.STOP


def _token(stage: ConstraintStage, text: bytes) -> int:
    return stage.vocab.bytes_to_ids[text][0]


def _text(stage: ConstraintStage, req: Req) -> bytes:
    return stage.vocab.decode(req.output_ids)


def _allowed(stage: ConstraintStage, req: Req) -> set[int]:
    row = torch.zeros(stage.vocab.mask_words, dtype=torch.int32)
    req.constraint.matcher.fill_bitmask(row)
    bits = np.unpackbits(row.numpy().view(np.uint8), bitorder="little")[: stage.vocab.width]
    return set(np.flatnonzero(bits).tolist())


def _decode_batch(*reqs: Req) -> ScheduledBatch:
    return ScheduledBatch(ForwardMode.DECODE, list(reqs), [r.num_tokens - 1 for r in reqs],
                          [1] * len(reqs))


def test_a_built_request_gets_its_matcher_and_jumps_over_its_forced_start(stage):
    req = _req(r'\{"age":[0-9]\}')
    rewrite = _built(stage, req)[id(req)]
    assert req.constraint.matcher is not None
    assert rewrite.num_drop == 0 and not rewrite.is_done
    _apply(req, rewrite)
    assert _text(stage, req) == b'{"age":'
    assert req.constraint.matcher.text_bytes() == b'{"age":'  # already walked
    assert req.constraint.forced_positions == list(range(len(req.output_ids)))
    assert stage.counters.num_forced_tokens == len(req.output_ids)


def test_after_a_sampled_token_the_forced_end_is_appended_and_the_request_stops(stage):
    req = _req(r'\{"age":[0-9]\}')
    _apply(req, _built(stage, req)[id(req)])
    seven = _token(stage, b"7")
    assert seven in _allowed(stage, req)
    req.output_ids.append(seven)  # what OutputProcessor.append_token does
    rewrite = stage.after_token(req, seven)
    assert rewrite.is_jump and rewrite.is_done
    _apply(req, rewrite)
    assert _text(stage, req) == b'{"age":7}' and req.constraint.is_valid


def test_after_token_stops_when_the_text_matches_and_nothing_may_follow(stage):
    req = _req("[0-9]{2}")
    assert _built(stage, req)[id(req)] is None  # nothing forced at the start
    for digit, expected in ((b"4", None), (b"2", STOP)):
        token = _token(stage, digit)
        req.output_ids.append(token)
        assert stage.after_token(req, token) == expected
    eos = byte_level_tokenizer().eos_token_id
    req.finish_reason = FinishReason.STOP
    assert stage.after_token(req, eos) is None  # a stop token after the match: nothing to do


def test_a_constraint_longer_than_max_new_tokens_fails_its_request(stage):
    req = _req("[0-9]{40}", SamplingParams(temperature=0, max_new_tokens=2))
    assert _built(stage, req)[id(req)] is None
    assert req.finish_reason is FinishReason.ABORT
    assert req.error.startswith("constraint: the constraint needs at least")


def test_plan_computes_only_the_allowed_columns_of_all_constrained_batches(stage):
    digits, answer = _req("[0-9]+"), _req("(yes|no)")
    _built(stage, digits, answer)
    allowed = _allowed(stage, digits) | _allowed(stage, answer)
    plan = stage.plan(_decode_batch(digits, answer))
    assert plan.compact and plan.columns.tolist() == sorted(allowed)
    sampled = _req("[0-9]+", SamplingParams(temperature=0.8, max_new_tokens=8))
    _built(stage, sampled)
    assert not stage.plan(_decode_batch(digits, sampled)).compact  # a sampled row: full rows
    assert (stage.counters.num_column_logits_batches,
            stage.counters.num_compact_logits_batches) == (2, 1)
    free = _req(None)
    logprobs = _req("[0-9]+", SamplingParams(temperature=0, logprobs=2))
    _built(stage, logprobs)
    for batch in (_decode_batch(digits, free), _decode_batch(digits, logprobs)):
        assert stage.plan(batch) is FULL_LOGITS  # some row needs the full-width logits


def test_mask_leaves_exactly_the_allowed_tokens_in_every_logits_layout(stage):
    digits, answer, free = _req("[0-9]+"), _req("(yes|no)"), _req(None)
    _built(stage, digits, answer)
    width = stage.vocab.width
    logits = torch.randn(3, width, generator=torch.Generator().manual_seed(0))
    full = logits.clone()
    stage.mask(full, [digits, free, answer], FULL_LOGITS)
    assert set(torch.isfinite(full[0]).nonzero()[:, 0].tolist()) == _allowed(stage, digits)
    assert torch.equal(full[1], logits[1])  # unconstrained: untouched
    assert set(torch.isfinite(full[2]).nonzero()[:, 0].tolist()) == _allowed(stage, answer)

    plan = stage.plan(_decode_batch(digits, answer))
    index = torch.from_numpy(plan.columns)
    expected = logits[[0, 2]].clone()
    stage.mask(expected, [digits, answer], FULL_LOGITS)
    columns_only = torch.full_like(expected, float("-inf"))
    columns_only[:, index] = logits[[0, 2]][:, index]
    stage.mask(columns_only, [digits, answer], LogitsPlan(plan.columns, compact=False))
    assert torch.equal(columns_only, expected)
    compact = logits[[0, 2]][:, index].clone()
    stage.mask(compact, [digits, answer], plan)
    assert torch.equal(compact, expected[:, index])


def test_a_group_aborted_while_building_is_discarded(stage):
    req = _req("[a-z]{3}")
    stage.add([req])
    assert stage.building_reqs() == [req] and not stage.is_idle
    req.finish_reason = FinishReason.ABORT
    stage.discard_finished()
    assert stage.is_idle and stage.take_built(wait_for_one=False) == []
