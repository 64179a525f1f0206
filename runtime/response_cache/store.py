"""`ResponseStore`: the response cache's entries in an SQLite file, bounded in bytes.

    meta     name -> value: schema version, policy, access clock, GDSF's inflation L, bytes
    entries  key -> value bytes, size, cost, frequency, last access, priority
    history  key -> request count, for keys not (or no longer) stored; rows unseen for
             `max_history` accesses are dropped

An entry's size is its key and value bytes plus a fixed per-row overhead; the sum over
entries stays <= `max_bytes` (the file itself is larger by SQLite's page overhead). Each
access is one `BEGIN IMMEDIATE` transaction, so several engines, threads or processes may
share one file: the clock, L and the byte total are read and written under the lock.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from sglc.runtime.core import EngineError
from sglc.runtime.response_cache.policies import BaseEvictionPolicy, EntryStats

SCHEMA_VERSION = 1
ROW_OVERHEAD_BYTES = 64  # the numeric columns and SQLite's row header, roughly
_HISTORY_PRUNE_EVERY = 1024  # accesses between prunes of the key history

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY, value BLOB NOT NULL, size INTEGER NOT NULL, cost REAL NOT NULL,
    frequency INTEGER NOT NULL, last_access INTEGER NOT NULL, priority REAL NOT NULL);
CREATE INDEX IF NOT EXISTS entries_by_priority ON entries (priority, last_access);
CREATE TABLE IF NOT EXISTS history (
    key TEXT PRIMARY KEY, count INTEGER NOT NULL, last_seen INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS history_by_age ON history (last_seen);
"""


class ResponseCacheError(EngineError):
    """The response cache's file cannot be used (corrupted, locked, not ours, ...)."""


@dataclass(frozen=True)
class StoreStats:
    num_entries: int
    num_bytes: int  # the entries' sizes, <= max_bytes
    max_bytes: int
    num_evictions: int  # by this store object
    num_rejected: int  # entries larger than max_bytes, never stored


class ResponseStore:
    """Entries by key in the SQLite file at `path` (created if missing), evicted by `policy`
    to stay within `max_bytes`. Thread-safe. Raises ResponseCacheError, naming the file,
    when it cannot be opened or read."""

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int,
                 policy: BaseEvictionPolicy, max_history: int = 100_000,
                 timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.policy = policy
        self.max_history = max_history
        self.timeout_s = timeout_s
        self.num_evictions = 0
        self.num_rejected = 0
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None,
                                       check_same_thread=False)
            # WAL: readers do not block the writer; NORMAL: no fsync per commit (a crash may
            # lose the last entries, never corrupt the file)
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        self._run(self._open)

    # -- the public operations ----------------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        """The value stored under `key` (and the access counted), or None (a miss, counted
        in the key's history)."""
        return self._run(lambda: self._get(key))

    def put(self, key: str, value: bytes, cost: float) -> bool:
        """Store `value` under `key`, then evict to the byte bound (which may evict it, if
        the policy ranks it lowest). False when it is larger than the whole bound."""
        return self._run(lambda: self._put(key, value, cost))

    def stats(self) -> StoreStats:
        def read() -> StoreStats:
            (count,) = self._db.execute("SELECT COUNT(*) FROM entries").fetchone()
            return StoreStats(count, int(self._meta("bytes")), self.max_bytes,
                              self.num_evictions, self.num_rejected)
        return self._run(read, write=False)

    def keys_by_priority(self) -> list[str]:
        """Stored keys, the next to be evicted first (for tests and inspection)."""
        rows = self._run(lambda: self._db.execute(
            "SELECT key FROM entries ORDER BY priority, last_access").fetchall(), write=False)
        return [key for (key,) in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- inside a transaction -----------------------------------------------------------------
    def _open(self) -> None:
        tables = {name for (name,) in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "meta" not in tables:
            raise ResponseCacheError(
                f"response cache {self.path} is an SQLite database of something else (tables "
                f"{', '.join(sorted(tables))}); pass a new file's path")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                self._db.execute(statement)
        version = self._meta("schema_version")
        if version is None:
            for name, value in (("schema_version", SCHEMA_VERSION), ("clock", 0),
                                ("inflation", 0.0), ("bytes", 0), ("policy", self.policy.name)):
                self._set_meta(name, value)
        elif int(version) != SCHEMA_VERSION:
            raise ResponseCacheError(
                f"response cache {self.path} has schema version {version}, this sglc reads "
                f"{SCHEMA_VERSION}; delete the file or pass another path")
        if self._meta("policy") != self.policy.name:
            self._reprioritize()
        self._evict_to(self.max_bytes)

    def _get(self, key: str) -> bytes | None:
        clock = self._tick()
        row = self._db.execute("SELECT value, size, cost, frequency FROM entries WHERE key = ?",
                               (key,)).fetchone()
        if row is None:
            self._db.execute(
                "INSERT INTO history (key, count, last_seen) VALUES (?, 1, ?) ON CONFLICT(key) "
                "DO UPDATE SET count = count + 1, last_seen = excluded.last_seen", (key, clock))
            return None
        value, size, cost, frequency = row
        priority = self.policy.priority(EntryStats(frequency + 1, cost, size, clock),
                                        self._inflation())
        self._db.execute("UPDATE entries SET frequency = frequency + 1, last_access = ?, "
                         "priority = ? WHERE key = ?", (clock, priority, key))
        return bytes(value)

    def _put(self, key: str, value: bytes, cost: float) -> bool:
        size = len(key) + len(value) + ROW_OVERHEAD_BYTES
        if size > self.max_bytes:
            self.num_rejected += 1
            return False
        clock = self._tick()
        row = self._db.execute("SELECT count FROM history WHERE key = ?", (key,)).fetchone()
        old = self._db.execute("SELECT size, frequency FROM entries WHERE key = ?",
                               (key,)).fetchone()
        frequency = max(1, row[0] if row else 0, old[1] if old else 0)
        priority = self.policy.priority(EntryStats(frequency, cost, size, clock),
                                        self._inflation())
        self._db.execute("DELETE FROM history WHERE key = ?", (key,))
        self._db.execute(
            "INSERT OR REPLACE INTO entries (key, value, size, cost, frequency, last_access, "
            "priority) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key, value, size, cost, frequency, clock, priority))
        self._set_meta("bytes", int(self._meta("bytes")) - (old[0] if old else 0) + size)
        self._evict_to(self.max_bytes)
        return True

    def _evict_to(self, max_bytes: int) -> None:
        total = int(self._meta("bytes"))
        inflation = self._inflation()
        while total > max_bytes:
            key, size, frequency, priority = self._db.execute(
                "SELECT key, size, frequency, priority FROM entries "
                "ORDER BY priority, last_access LIMIT 1").fetchone()
            self._db.execute("DELETE FROM entries WHERE key = ?", (key,))
            self._db.execute("INSERT OR REPLACE INTO history (key, count, last_seen) "
                             "VALUES (?, ?, ?)", (key, frequency, int(self._meta("clock"))))
            inflation = self.policy.inflation_after(priority, inflation)
            total -= size
            self.num_evictions += 1
        self._set_meta("bytes", total)
        self._set_meta("inflation", inflation)

    def _reprioritize(self) -> None:
        """The file was last used with another policy: rank its entries by this one."""
        rows = self._db.execute(
            "SELECT key, size, cost, frequency, last_access FROM entries").fetchall()
        for key, size, cost, frequency, last_access in rows:
            priority = self.policy.priority(EntryStats(frequency, cost, size, last_access), 0.0)
            self._db.execute("UPDATE entries SET priority = ? WHERE key = ?", (priority, key))
        self._set_meta("inflation", 0.0)
        self._set_meta("policy", self.policy.name)

    def _tick(self) -> int:
        clock = int(self._meta("clock")) + 1
        self._set_meta("clock", clock)
        if clock % _HISTORY_PRUNE_EVERY == 0:
            self._db.execute("DELETE FROM history WHERE last_seen < ?",
                             (clock - self.max_history,))
        return clock

    def _inflation(self) -> float:
        return float(self._meta("inflation"))

    def _meta(self, name: str) -> object:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    def _set_meta(self, name: str, value: object) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    # -- transactions and errors --------------------------------------------------------------
    def _run(self, body, write: bool = True):
        """`body()` in one transaction (IMMEDIATE: it takes the write lock at once), under
        the thread lock; sqlite3 errors become ResponseCacheError naming the file."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    result = body()
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
                return result
            except sqlite3.Error as exc:
                raise self._error(exc) from None

    def _error(self, exc: sqlite3.Error) -> ResponseCacheError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            why = (f"is locked by another connection or process (waited {self.timeout_s:g} s); "
                   f"close it, or pass another path")
        elif "not a database" in text or "malformed" in text or "corrupt" in text:
            why = ("is not a valid SQLite database (corrupted, or another kind of file); "
                   "delete it, or pass another path")
        elif "unable to open" in text or "readonly" in text:
            why = "cannot be opened for writing; check that its folder exists and is writable"
        else:
            why = "cannot be used"
        return ResponseCacheError(f"response cache {self.path} {why} (sqlite: {text})")
