"""Helpers shared by the constrained-decoding engine tests."""

from __future__ import annotations

import sglc
from sglc.runtime.core import FinishReason, Output, SamplingParams

MAX_TOTAL_TOKENS = 1 << 16
WAIT_S = 120  # generous: only a hang reaches it


def engine_with_index(path, index_dir, **options) -> sglc.Engine:
    """An engine on `path` whose constraint indexes are cached in `index_dir`."""
    options = {"max_total_tokens": MAX_TOTAL_TOKENS, "index_cache_dir": str(index_dir),
               **options}
    return sglc.Engine(path, **options)


def assert_valid(out: Output) -> None:
    assert out.error is None, out.error
    assert out.finish_reason is FinishReason.STOP, (out.text, out.finish_reason)
    assert out.is_valid is True, out.text


def greedy(**kw) -> SamplingParams:
    return SamplingParams(temperature=0, **{"max_new_tokens": 24, "ignore_eos": True, **kw})
