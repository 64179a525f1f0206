"""Token automata (outlines-core ``Index``) cached by (index-form regex, vocabulary hash).

Building an Index walks every vocabulary token through the regex's byte DFA from every state:
milliseconds for a JSON object with fixed keys, seconds for free text over a 128k vocabulary.
So indices are

* built off the engine thread, in a ``ThreadPoolExecutor`` (outlines-core releases the GIL
  while it builds: the engine thread keeps running, and two builds overlap on two cores);
* kept in an in-memory LRU (``max_entries``), shared by every request with the same regex;
* stored on disk (``cache_dir``; default ``$SGLC_CACHE_DIR/index`` or ``~/.cache/sglc/index``)
  in outlines-core's own binary form (``Index.from_binary``), so a restart loads instead of
  rebuilding.

Two outlines-core 0.2.x pitfalls are handled here: a regex must be handed over as
``(?:R)$`` (without the ``$`` the DFA stops at the first match: ``[0-9]+(\\.[0-9]+)?`` rejects
"1.5"; with a leading ``^`` the build fails), and a regex that matches the empty string cannot
be built with the ``$`` at all ("anchored universal start state doesn't exist"). Two ways
around the latter are supported:

* a form R' for the non-empty texts plus ``accepts_empty=True`` (what
  ``regex.index_form`` computes): the matcher then allows stop ids before the first token;
* otherwise, when the build fails that way, the Index is built for ``\\xNN(?:R)$`` with a
  one-byte sentinel the vocabulary has as a token, and matching starts in the state after the
  sentinel (:attr:`CompiledIndex.start_state`, reached by :attr:`CompiledIndex.prefix_tokens`).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from outlines_core import Index

from sglc.constraints import ConstraintError, index_form, used_chars
from sglc.progress import working
from sglc.runtime.constrained.vocabulary import TokenVocabulary

__all__ = [
    "CacheStats",
    "CompiledIndex",
    "IndexBuildError",
    "IndexCache",
    "build_index",
    "default_cache_dir",
]

_MAGIC = b"SGLCIDX1"
_FORMAT = 1
try:
    _OC_VERSION = metadata.version("outlines_core")
except metadata.PackageNotFoundError:  # pragma: no cover - always installed with sglc
    _OC_VERSION = "unknown"


_Key = tuple[str, bool, str]  # (index form, accepts_empty, vocabulary hash)


_NULLABLE_ERROR = "universal start state"


class IndexBuildError(ValueError):
    """outlines-core could not build a token index for a regex (the message names the regex)."""


def _index_form(pattern: str) -> tuple[str, bool]:
    """(regex for outlines-core, whether the empty text needs the matcher's help).

    `regex.index_form` re-emits the pattern in the Rust regex syntax, anchored with `$`, for
    the non-empty texts; a pattern whose only text is the empty one becomes ``(?:)$``, which
    the sentinel build handles (see `build_index`). IndexBuildError for a bad pattern.
    """
    try:
        form = index_form(pattern)
    except ConstraintError as exc:
        raise IndexBuildError(f"cannot build a token index for regex {pattern!r}: {exc}") from None
    if form.regex is None:
        return "(?:)$", False
    return form.regex, form.accepts_empty


@dataclass(eq=False)
class CompiledIndex:
    """An outlines-core Index for one regex over one vocabulary, and where matching starts.

    ``start_state`` is ``index.get_initial_state()`` except for regexes that match the empty
    string (see the module docstring): then ``prefix_tokens`` (the sentinel's token) lead from
    the initial state to it. ``accepts_empty``: the index is for the non-empty texts and the
    empty text matches too (stop ids are allowed before the first token). ``extras`` holds
    per-index helpers built lazily by other modules (mask cache, stop masks, forced-string
    table), shared by all requests using the index.
    """

    regex: str
    form: str
    vocab: TokenVocabulary
    index: Index
    start_state: int
    prefix_tokens: tuple[int, ...] = ()
    accepts_empty: bool = False
    build_seconds: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict, repr=False)

    def is_final(self, state: int) -> bool:
        """True iff the text so far is a complete match (stop tokens allowed)."""
        return self.index.is_final_state(state)

    def next_state(self, state: int, token_id: int) -> int | None:
        """The state after ``token_id``, or None if the token is not allowed in ``state``."""
        return self.index.get_next_state(state, token_id)

    def can_continue(self, state: int) -> bool:
        """True iff some non-stop token is allowed in ``state`` (cached per state)."""
        memo: dict[int, bool] = self.extras.setdefault("can_continue", {})
        hit = memo.get(state)
        if hit is None:
            eos = self.vocab.eos_id
            hit = memo[state] = any(t != eos for t in self.index.get_allowed_tokens(state) or ())
        return hit


def build_index(
    regex: str, vocab: TokenVocabulary, form: str | None = None, accepts_empty: bool = False
) -> CompiledIndex:
    """Build (no caching) the token index of ``regex``; IndexBuildError names the regex.

    ``form`` (with ``accepts_empty``) is the regex handed to outlines-core; by default derived
    from ``regex``.
    """
    if form is None:
        form, accepts_empty = _index_form(regex)
    start = time.perf_counter()
    # NOTE: behind a sentinel byte the regex never matches, where there is one. Built
    # plainly, outlines-core 0.2.14 also builds the unanchored DFA, which grows exponentially
    # when the first character can recur in a counted repeat (`x[a-z]{30}`: gigabytes, then
    # the process aborts); the sentinel keeps it small. A sentinel the regex does match can
    # blow up the same way, so a regex over every ASCII byte is built plainly.
    sentinel = _unused_sentinel(regex, vocab)
    with working(f"building the token index of /{_shorten(regex)}/"):  # shown after 1 s
        if sentinel is None:
            index, start_state, prefix = _build_plain(regex, form, vocab)
        else:
            index, start_state, prefix = _build_with_sentinel(regex, form, vocab, sentinel)
    seconds = time.perf_counter() - start
    return CompiledIndex(regex, form, vocab, index, start_state, prefix, accepts_empty, seconds)


def _shorten(regex: str, limit: int = 40) -> str:
    return regex if len(regex) <= limit else regex[: limit - 1] + "…"


def _unused_sentinel(regex: str, vocab: TokenVocabulary) -> int | None:
    """An ASCII byte with its own token that no text of the regex contains (controls first)."""
    try:
        used = used_chars(regex)
    except Exception:  # noqa: BLE001 - outside the dialect: assume it may use any byte
        return None
    for byte in (*range(0x20), 0x7F, *range(0x20, 0x7F)):
        if vocab.bytes_to_ids.get(bytes([byte])) and not any(lo <= byte <= hi for lo, hi in used):
            return byte
    return None


def _build_plain(
    regex: str, form: str, vocab: TokenVocabulary
) -> tuple[Index, int, tuple[int, ...]]:
    try:
        index = Index(form, vocab.outlines)
    except Exception as err:  # outlines-core raises ValueError or RuntimeError
        if _NULLABLE_ERROR not in str(err):
            raise IndexBuildError(f"cannot build a token index for regex {regex!r}: {err}") from err
        return _build_with_sentinel(regex, form, vocab, None)
    return index, index.get_initial_state(), ()


def _build_with_sentinel(
    regex: str, form: str, vocab: TokenVocabulary, byte: int | None
) -> tuple[Index, int, tuple[int, ...]]:
    """Index of ``\\xNN`` + form; matching starts after the sentinel byte's token (`byte`, or
    the first ASCII byte with a token)."""
    if byte is None:
        byte = next((b for b in range(0x80) if vocab.bytes_to_ids.get(bytes([b]))), None)
    if byte is None:
        raise IndexBuildError(
            f"cannot build a token index for regex {regex!r}: it matches the empty string and "
            "the vocabulary has no single-byte ASCII token to anchor it"
        )
    ids = vocab.bytes_to_ids[bytes([byte])]
    try:
        index = Index(f"\\x{byte:02x}{form}", vocab.outlines)
    except Exception as err:
        raise IndexBuildError(f"cannot build a token index for regex {regex!r}: {err}") from err
    start_state = index.get_next_state(index.get_initial_state(), ids[0])
    if start_state is None:  # pragma: no cover - the sentinel token always matches itself
        raise IndexBuildError(f"cannot anchor the token index for regex {regex!r}")
    return index, start_state, (ids[0],)


def default_cache_dir() -> Path:
    """``$SGLC_CACHE_DIR/index`` if set, else ``~/.cache/sglc/index``."""
    root = os.environ.get("SGLC_CACHE_DIR")
    return Path(root) / "index" if root else Path.home() / ".cache" / "sglc" / "index"


@dataclass
class CacheStats:
    """Counters: indices built, loaded from disk, served from memory, evicted from memory."""

    builds: int = 0
    disk_hits: int = 0
    memory_hits: int = 0
    evictions: int = 0
    build_seconds: float = 0.0


class IndexCache:
    """Thread-safe cache of :class:`CompiledIndex` keyed by (index-form regex, vocabulary hash).

    ``vocabulary`` is the default for :meth:`get`/:meth:`get_async`; ``cache_dir=None`` uses
    :func:`default_cache_dir`; ``disk=False`` keeps everything in memory.
    """

    def __init__(
        self,
        vocabulary: TokenVocabulary | None = None,
        *,
        max_entries: int = 64,
        cache_dir: str | os.PathLike[str] | None = None,
        disk: bool = True,
        max_workers: int = 2,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.vocabulary = vocabulary
        self.max_entries = max_entries
        if not disk:
            self.cache_dir: Path | None = None
        else:
            self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.stats = CacheStats()
        self._lock = threading.Lock()
        self._lru: OrderedDict[_Key, CompiledIndex] = OrderedDict()
        self._inflight: dict[_Key, Future[CompiledIndex]] = {}
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="sglc-index")

    def get_async(
        self, regex: str, vocabulary: TokenVocabulary | None = None
    ) -> Future[CompiledIndex]:
        """A future of the index for ``regex``; never blocks on a build."""
        vocab = self._vocab(vocabulary)
        form = _index_form(regex)
        key = (*form, vocab.hash)
        with self._lock:
            hit = self._lru.get(key)
            if hit is not None:
                self._lru.move_to_end(key)
                self.stats.memory_hits += 1
                done: Future[CompiledIndex] = Future()
                done.set_result(hit)
                return done
            pending = self._inflight.get(key)
            if pending is None:
                pending = self._pool.submit(self._job, key, regex, form, vocab)
                self._inflight[key] = pending
            return pending

    def get(
        self, regex: str, vocabulary: TokenVocabulary | None = None, timeout: float | None = None
    ) -> CompiledIndex:
        """The index for ``regex``, waiting for its build; raises IndexBuildError."""
        return self.get_async(regex, vocabulary).result(timeout)

    def __contains__(self, key: tuple[str, TokenVocabulary]) -> bool:
        regex, vocab = key
        with self._lock:
            return (*_index_form(regex), vocab.hash) in self._lru

    def __len__(self) -> int:
        with self._lock:
            return len(self._lru)

    def close(self) -> None:
        """Stop the build threads (waits for running builds)."""
        self._pool.shutdown(wait=True)

    def __enter__(self) -> IndexCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals ---------------------------------------------------------------------------

    def _vocab(self, vocabulary: TokenVocabulary | None) -> TokenVocabulary:
        vocab = vocabulary if vocabulary is not None else self.vocabulary
        if vocab is None:
            raise ValueError("IndexCache has no default vocabulary; pass one")
        return vocab

    def _job(
        self, key: _Key, regex: str, form: tuple[str, bool], vocab: TokenVocabulary
    ) -> CompiledIndex:
        """Runs on a pool thread: the result is in the LRU before the future completes."""
        try:
            compiled = self._load_or_build(regex, form, vocab)
        except BaseException:
            with self._lock:
                self._inflight.pop(key, None)
            raise
        with self._lock:
            self._inflight.pop(key, None)
            self._lru[key] = compiled
            self._lru.move_to_end(key)
            while len(self._lru) > self.max_entries:
                self._lru.popitem(last=False)
                self.stats.evictions += 1
        return compiled

    def _load_or_build(
        self, regex: str, form: tuple[str, bool], vocab: TokenVocabulary
    ) -> CompiledIndex:
        path = self._path(form, vocab)
        if path is not None:
            loaded = _read_index(path, regex, form, vocab)
            if loaded is not None:
                with self._lock:
                    self.stats.disk_hits += 1
                return loaded
        compiled = build_index(regex, vocab, *form)
        with self._lock:
            self.stats.builds += 1
            self.stats.build_seconds += compiled.build_seconds
        if path is not None:
            _write_index(path, compiled)
        return compiled

    def _path(self, form: tuple[str, bool], vocab: TokenVocabulary) -> Path | None:
        if self.cache_dir is None:
            return None
        key = f"{form[0]}\0{int(form[1])}\0{vocab.hash}\0{_OC_VERSION}\0{_FORMAT}".encode()
        return self.cache_dir / f"{hashlib.sha256(key).hexdigest()}.idx"


# --- disk format: magic, 4-byte header length, JSON header, outlines-core Index binary ---------


def _index_binary(index: Index) -> bytes:
    _, args = index.__reduce__()
    return bytes(args[0])


def _write_index(path: Path, compiled: CompiledIndex) -> None:
    header = json.dumps({
        "form": compiled.form, "vocab": compiled.vocab.hash, "start": compiled.start_state,
        "prefix": list(compiled.prefix_tokens), "accepts_empty": compiled.accepts_empty,
        "outlines_core": _OC_VERSION, "format": _FORMAT,
    }).encode()
    blob = _MAGIC + len(header).to_bytes(4, "little") + header + _index_binary(compiled.index)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(blob)
        os.replace(tmp, path)
    except OSError:  # a read-only or full cache directory only costs a rebuild next time
        pass


def _read_index(
    path: Path, regex: str, form: tuple[str, bool], vocab: TokenVocabulary
) -> CompiledIndex | None:
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    try:
        if not blob.startswith(_MAGIC):
            return None
        size = int.from_bytes(blob[8:12], "little")
        header = json.loads(blob[12 : 12 + size])
        stored = (header.get("form"), header.get("accepts_empty"))
        if stored != form or header.get("vocab") != vocab.hash:
            return None
        index = Index.from_binary(blob[12 + size :])
        prefix = tuple(int(t) for t in header.get("prefix", ()))
        return CompiledIndex(regex, form[0], vocab, index, int(header["start"]), prefix, form[1])
    except (ValueError, KeyError, TypeError):  # corrupt or foreign file: rebuild
        return None
