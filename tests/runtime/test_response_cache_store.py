"""The response cache's SQLite store without an engine: each eviction policy's order on a
constructed access sequence (checked against the policy's formula worked out by hand), the
byte bound, persistence across reopenings, and clear errors for bad files."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from sglc.runtime.response_cache import ResponseCacheError, ResponseStore, make_policy
from sglc.runtime.response_cache.store import ROW_OVERHEAD_BYTES


def entry_size(key: str, value: bytes) -> int:
    return len(key) + len(value) + ROW_OVERHEAD_BYTES


def open_store(path, policy: str, max_bytes: int = 10_000) -> ResponseStore:
    return ResponseStore(path / "c.sqlite", max_bytes=max_bytes, policy=make_policy(policy))


def fill(store: ResponseStore) -> None:
    """a: cheap, asked 3 times; b: expensive, asked once; c: mid cost, large, asked twice.
    Access order (clock): get a, put a, get a, get a, get b, put b, get c, put c, get c."""
    store.get("a")
    store.put("a", b"x" * 10, cost=1.0)
    store.get("a")
    store.get("a")
    store.get("b")
    store.put("b", b"x" * 10, cost=10.0)
    store.get("c")
    store.put("c", b"x" * 400, cost=4.0)
    store.get("c")


def test_lru_evicts_the_least_recently_used(tmp_path) -> None:
    store = open_store(tmp_path, "lru")
    fill(store)
    # last accesses: a at 4, b at 6, c at 9
    assert store.keys_by_priority() == ["a", "b", "c"]


def test_lec_evicts_the_least_expected_cost(tmp_path) -> None:
    store = open_store(tmp_path, "lec")
    fill(store)
    # frequency x cost: a 3 x 1 = 3, c 2 x 4 = 8, b 1 x 10 = 10 (size plays no part)
    assert store.keys_by_priority() == ["a", "c", "b"]


def test_gdsf_weighs_frequency_and_cost_by_size(tmp_path) -> None:
    store = open_store(tmp_path, "gdsf")
    fill(store)
    # L + frequency x cost / size with L = 0: a 3/75, b 10/75, c 8/465
    sizes = {k: entry_size(k, b"x" * n) for k, n in (("a", 10), ("b", 10), ("c", 400))}
    expected = {"a": 3 / sizes["a"], "b": 10 / sizes["b"], "c": 8 / sizes["c"]}
    assert store.keys_by_priority() == sorted(expected, key=expected.get)
    assert store.keys_by_priority() == ["c", "a", "b"]


def test_gdsf_inflation_ages_entries(tmp_path) -> None:
    """After an eviction L rises to the victim's priority, so a new entry outranks an old
    one of the same frequency x cost / size (the classic GDSF aging)."""
    size = entry_size("k0", b"x" * 100)
    store = open_store(tmp_path, "gdsf", max_bytes=2 * size)
    store.put("k0", b"x" * 100, cost=5.0)
    store.put("k1", b"x" * 100, cost=1.0)
    store.put("k2", b"x" * 100, cost=1.0)  # over the bound: k1 (1/size, then oldest) goes
    assert store.keys_by_priority() == ["k2", "k0"]
    store.put("k3", b"x" * 100, cost=1.0)  # L = 1/size now: k3 = 2/size > k2 = 1/size
    assert store.keys_by_priority() == ["k3", "k0"]


@pytest.mark.parametrize("policy, survivors", [("lru", {"b", "c"}), ("lec", {"b", "c"}),
                                               ("gdsf", {"a", "b"})])
def test_eviction_keeps_the_bytes_within_the_bound(tmp_path, policy, survivors) -> None:
    sizes = entry_size("a", b"x" * 10) + entry_size("b", b"x" * 10) + entry_size("c", b"x" * 400)
    store = open_store(tmp_path, policy, max_bytes=sizes - 1)  # one entry must go
    fill(store)
    stats = store.stats()
    assert stats.num_bytes <= stats.max_bytes
    assert set(store.keys_by_priority()) == survivors
    assert stats.num_bytes == sum(entry_size(k, b"x" * (400 if k == "c" else 10))
                                  for k in survivors)
    assert stats.num_evictions == 1


def test_an_entry_larger_than_the_bound_is_never_stored(tmp_path) -> None:
    store = open_store(tmp_path, "gdsf", max_bytes=200)
    assert store.put("big", b"x" * 500, cost=1.0) is False
    assert store.get("big") is None and store.stats().num_rejected == 1


def test_entries_and_frequencies_persist_across_reopening(tmp_path) -> None:
    store = open_store(tmp_path, "lec")
    fill(store)
    store.close()
    store = open_store(tmp_path, "lec")
    assert store.get("b") == b"x" * 10
    assert store.keys_by_priority() == ["a", "c", "b"]  # b's frequency is 2 now: 20
    store.close()
    # a smaller bound on reopening evicts down to it, by the policy
    store = open_store(tmp_path, "lec", max_bytes=entry_size("b", b"x" * 10))
    assert store.keys_by_priority() == ["b"]


def test_reopening_with_another_policy_reranks_the_entries(tmp_path) -> None:
    fill(open_store(tmp_path, "lru"))
    assert open_store(tmp_path, "lec").keys_by_priority() == ["a", "c", "b"]


def test_an_evicted_key_keeps_its_frequency(tmp_path) -> None:
    size = entry_size("a", b"x" * 10)
    store = open_store(tmp_path, "lec", max_bytes=size)
    for _ in range(3):
        store.get("a")
    store.put("a", b"x" * 10, cost=1.0)  # frequency 3
    store.put("b", b"x" * 10, cost=2.0)  # 1 x 2 = 2 < 3: b evicts itself
    assert store.keys_by_priority() == ["a"]
    store.get("b")
    store.put("b", b"x" * 10, cost=2.0)  # b's count (2) survived: 2 x 2 = 4 > 3
    assert store.keys_by_priority() == ["b"]


def test_a_corrupted_file_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not an sqlite database at all" * 200)
    with pytest.raises(ResponseCacheError, match=r"c\.sqlite is not a valid SQLite database "
                                                 r".*delete it, or pass another path"):
        ResponseStore(path, max_bytes=1000, policy=make_policy("lru"))


def test_another_programs_database_is_refused(tmp_path) -> None:
    path = tmp_path / "c.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (name TEXT)")
    with pytest.raises(ResponseCacheError, match="an SQLite database of something else "
                                                 r"\(tables users\)"):
        ResponseStore(path, max_bytes=1000, policy=make_policy("lru"))


def test_a_locked_file_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "c.sqlite"
    ResponseStore(path, max_bytes=1000, policy=make_policy("lru")).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(ResponseCacheError, match=r"is locked by another connection or "
                                                     r"process \(waited 0\.1 s\)"):
            ResponseStore(path, max_bytes=1000, policy=make_policy("lru"), timeout_s=0.1)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_missing_folder_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ResponseCacheError, match="cannot be opened for writing"):
        ResponseStore(tmp_path / "nowhere" / "c.sqlite", max_bytes=1000,
                      policy=make_policy("lru"))


def test_concurrent_writers_keep_the_byte_total_exact(tmp_path) -> None:
    store = open_store(tmp_path, "gdsf", max_bytes=20 * entry_size("k00-0", b"x" * 50))

    def work(t: int) -> None:
        for i in range(30):
            store.get(f"k{i:02d}-{t}")
            store.put(f"k{i:02d}-{t}", b"x" * 50, cost=float(i + 1))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = store.stats()
    assert stats.num_entries == 20
    assert stats.num_bytes == 20 * entry_size("k00-0", b"x" * 50) <= stats.max_bytes
