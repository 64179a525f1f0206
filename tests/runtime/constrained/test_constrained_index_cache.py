"""IndexCache: LRU, disk round trip, vocabulary-keyed, background builds that leave the GIL."""

from __future__ import annotations

import os
import threading
import time

import pytest
from test_constrained_vocabulary import byte_level_tokenizer

from sglc.runtime.constrained.index_cache import (
    IndexBuildError,
    IndexCache,
    build_index,
    default_cache_dir,
)
from sglc.runtime.constrained.matcher import RegexMatcher, synthetic_token_bytes
from sglc.runtime.constrained.vocabulary import build_vocabulary, vocabulary_from_token_bytes

A, B, C = r"[0-9]{1,3}", r"(yes|no)", r'\{"k":"[a-z]{1,5}"\}'


@pytest.fixture(scope="module")
def vocab():
    tok = byte_level_tokenizer()
    return build_vocabulary(tok, len(tok), [tok.eos_token_id])


def test_memory_lru_evicts_the_least_recent(vocab):
    with IndexCache(vocab, max_entries=2, disk=False) as cache:
        first = cache.get(A)
        cache.get(B)
        assert cache.get(A) is first and cache.stats.memory_hits == 1  # A is now most recent
        cache.get(C)  # evicts B
        assert (A, vocab) in cache and (C, vocab) in cache and (B, vocab) not in cache
        assert cache.stats.evictions == 1 and len(cache) == 2
        cache.get(B)
        assert cache.stats.builds == 4


def test_disk_round_trip_loads_without_rebuilding(vocab, tmp_path):
    with IndexCache(vocab, cache_dir=tmp_path) as first:
        built = first.get(C)
        nullable = first.get(r"[a-c]{0,4}")  # built with a sentinel start
        assert first.stats.builds == 2
    assert len(list(tmp_path.glob("*.idx"))) == 2
    with IndexCache(vocab, cache_dir=tmp_path) as second:
        loaded = second.get(C)
        loaded_nullable = second.get(r"[a-c]{0,4}")
        assert second.stats.builds == 0 and second.stats.disk_hits == 2
    assert loaded.index == built.index and loaded.start_state == built.start_state
    assert loaded_nullable.accepts_empty and nullable.accepts_empty
    assert loaded_nullable.form == nullable.form
    matcher = RegexMatcher(loaded_nullable)
    assert matcher.is_accepting()
    matcher.advance(vocab.bytes_to_ids[b"a"][0])
    assert matcher.is_accepting()


def test_key_includes_the_vocabulary_hash(vocab, tmp_path):
    wider = build_vocabulary(byte_level_tokenizer(), vocab.width + 32, [vocab.eos_id])
    with IndexCache(vocab, cache_dir=tmp_path) as cache:
        one = cache.get(A)
        two = cache.get(A, wider)
        assert one is not two and two.vocab is wider
        assert cache.stats.builds == 2
    assert len(list(tmp_path.glob("*.idx"))) == 2


def test_corrupt_disk_entry_is_rebuilt(vocab, tmp_path):
    with IndexCache(vocab, cache_dir=tmp_path) as cache:
        cache.get(A)
    (path,) = tmp_path.glob("*.idx")
    path.write_bytes(b"SGLCIDX1garbage")
    with IndexCache(vocab, cache_dir=tmp_path) as cache:
        compiled = cache.get(A)
        assert cache.stats.builds == 1 and cache.stats.disk_hits == 0
    matcher = RegexMatcher(compiled)
    matcher.advance(vocab.bytes_to_ids[b"7"][0])
    assert matcher.is_accepting()


def test_build_errors_name_the_regex(vocab):
    with IndexCache(vocab, disk=False) as cache:
        with pytest.raises(IndexBuildError, match=r"\(\?<=x\)y"):
            cache.get(r"(?<=x)y")
        assert len(cache) == 0
    with pytest.raises(IndexBuildError, match="no-such"):
        build_index(r"[z-a]no-such", vocab)


def test_concurrent_requests_share_one_build(vocab):
    with IndexCache(vocab, disk=False) as cache:
        futures = [cache.get_async(C) for _ in range(4)]
        results = {id(f.result()) for f in futures}
        assert len(results) == 1 and cache.stats.builds == 1


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SGLC_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "index"
    monkeypatch.delenv("SGLC_CACHE_DIR")
    assert default_cache_dir().parts[-3:] == (".cache", "sglc", "index")


@pytest.fixture(scope="module")
def big_vocab():
    return vocabulary_from_token_bytes(synthetic_token_bytes(20_000), 20_001, [20_000])


HEAVY = [r"[^\n]{1,100}", r"[^\t]{1,100}"]  # ~0.15 s each over 20k tokens


def test_builds_run_off_the_calling_thread(big_vocab):
    """The engine thread keeps running while outlines-core builds (it releases the GIL)."""
    with IndexCache(big_vocab, disk=False, max_workers=1) as cache:
        start = time.perf_counter()
        fut = cache.get_async(HEAVY[0])
        gaps, last = [], time.perf_counter()
        while not fut.done():
            sum(range(2000))  # stand-in for engine work
            now = time.perf_counter()
            gaps.append(now - last)
            last = now
        build = time.perf_counter() - start
        fut.result()
    assert build > 0.05, "the build should take long enough to observe"
    assert max(gaps) < max(0.05, 0.5 * build), (max(gaps), build)


def _idle_cores() -> float:
    return (os.cpu_count() or 1) - os.getloadavg()[0]


@pytest.mark.skipif(_idle_cores() < 1.5, reason="needs two cores not busy with other work")
def test_two_builds_overlap(big_vocab):
    """Two builds on two pool threads take less wall time than one after the other."""
    def one(pattern):
        return build_index(pattern, big_vocab).build_seconds

    serial = sum(one(p) for p in HEAVY)
    best = float("inf")
    for _ in range(2):
        threads = [threading.Thread(target=one, args=(p,)) for p in HEAVY]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        best = min(best, time.perf_counter() - start)
    assert best < 0.85 * serial, (best, serial)
