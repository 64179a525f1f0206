"""Compiled llguidance grammars, cached by (grammar, vocabulary hash), built off the loop.

The grammar path's vocabulary is the regex path's (:class:`TokenVocabulary`: the same bytes
per token id, the same stop ids, the same logits width), handed to llguidance as an
``LLTokenizer`` (built once per vocabulary, about a second at 128k tokens). Stop ids, special
tokens and ids past the tokenizer are llguidance special tokens: never text.

Compiling a grammar (``LLMatcher(tokenizer, grammar)``: lexer and parser tables; masks are
computed lazily per state) takes milliseconds for the grammars people write, and llguidance
releases the GIL while it compiles, so builds run in a ``ThreadPoolExecutor`` beside the
engine loop like the regex indexes. Each request gets a ``deep_copy`` of the compiled
matcher. Compiled grammars live in an in-memory LRU; they are not stored on disk (llguidance
has no serialized form, and compiling again costs about what reading would).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import llguidance

from sglc.runtime.constrained.vocabulary import TokenVocabulary

__all__ = ["CompiledGrammar", "GrammarBuildError", "GrammarCache", "build_grammar",
           "llg_tokenizer"]

Encoder = Callable[[str], list[int]]


class GrammarBuildError(ValueError):
    """llguidance could not compile a grammar for this vocabulary (the message says why)."""


@dataclass(eq=False)
class CompiledGrammar:
    """One grammar compiled for one vocabulary: `template` is a fresh matcher that
    :meth:`new_matcher` copies. `extras` holds per-grammar helpers (stop masks)."""

    grammar: str
    vocab: TokenVocabulary
    template: llguidance.LLMatcher
    build_seconds: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict, repr=False)

    def new_matcher(self) -> llguidance.LLMatcher:
        return self.template.deep_copy()


class _Tokenizer:
    """What ``llguidance.TokenizerWrapper`` asks of a tokenizer: the bytes of every id (the
    vocabulary's; a placeholder for the non-text ids it lists as special) and `__call__`,
    text -> ids (used to tokenize forced text)."""

    def __init__(self, vocab: TokenVocabulary, encode: Encoder | None) -> None:
        self.vocab = vocab
        self.eos_token_id = vocab.eos_id
        self.bos_token_id = None
        self.tokens = [b if b is not None else f"<|sglc:{i}|>".encode()
                       for i, b in enumerate(vocab.token_bytes)]
        self.special_token_ids = [i for i, b in enumerate(vocab.token_bytes) if b is None]
        self._encode = encode

    def __call__(self, text: str) -> list[int]:
        """Token ids that spell exactly `text`: the tokenizer's own where they do (after a
        newline anchor for tokenizers that prepend a space), else longest-match greedy."""
        expected = text.encode("utf-8")
        if self._encode is not None:
            ids = self._encode(text)
            if self._spells(ids, expected):
                return ids
            anchored = self._encode("\n" + text)
            for cut in range(1, min(len(anchored), 4) + 1):
                if self._spells(anchored[cut:], expected):
                    return anchored[cut:]
        return self._greedy(expected)

    def _spells(self, ids: list[int], expected: bytes) -> bool:
        vocab = self.vocab
        return (all(0 <= t < vocab.width and vocab.token_bytes[t] is not None for t in ids)
                and vocab.decode(ids) == expected)

    def _greedy(self, data: bytes) -> list[int]:
        ids, pos, longest = [], 0, self.vocab.max_token_len
        table = self.vocab.bytes_to_ids
        while pos < len(data):
            for size in range(min(longest, len(data) - pos), 0, -1):
                hit = table.get(data[pos:pos + size])
                if hit:
                    ids.append(hit[0])
                    pos += size
                    break
            else:  # a byte no token spells: the grammar cannot force it anyway
                return ids
        return ids


def llg_tokenizer(vocab: TokenVocabulary, encode: Encoder | None) -> llguidance.LLTokenizer:
    """The llguidance tokenizer of a vocabulary; `encode` is the model tokenizer's
    text -> ids (None: longest-match greedy)."""
    return llguidance.LLTokenizer(llguidance.TokenizerWrapper(_Tokenizer(vocab, encode)))


def build_grammar(grammar: str, vocab: TokenVocabulary,
                  tokenizer: llguidance.LLTokenizer) -> CompiledGrammar:
    """Compile (no caching) an llguidance grammar; GrammarBuildError says why it failed."""
    start = time.perf_counter()
    template = llguidance.LLMatcher(tokenizer, grammar, log_level=0)
    if template.is_error():
        raise GrammarBuildError(f"cannot compile the grammar: {template.get_error()}")
    return CompiledGrammar(grammar, vocab, template, time.perf_counter() - start)


class GrammarCache:
    """Thread-safe LRU of :class:`CompiledGrammar` by grammar text, for one vocabulary;
    builds run on `max_workers` threads, and the llguidance tokenizer is made by the first."""

    def __init__(self, vocab: TokenVocabulary, encode: Encoder | None, *,
                 max_entries: int = 64, max_workers: int = 2) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.vocab = vocab
        self.max_entries = max_entries
        self.num_builds = 0
        self.num_memory_hits = 0
        self._encode = encode
        self._tokenizer: llguidance.LLTokenizer | None = None
        self._lock = threading.Lock()
        self._tokenizer_lock = threading.Lock()
        self._lru: OrderedDict[str, CompiledGrammar] = OrderedDict()
        self._inflight: dict[str, Future[CompiledGrammar]] = {}
        self._pool = ThreadPoolExecutor(max_workers=max_workers,
                                        thread_name_prefix="sglc-grammar")

    @property
    def tokenizer(self) -> llguidance.LLTokenizer:
        with self._tokenizer_lock:
            if self._tokenizer is None:
                self._tokenizer = llg_tokenizer(self.vocab, self._encode)
            return self._tokenizer

    def get_async(self, grammar: str) -> Future[CompiledGrammar]:
        """A future of the compiled grammar; never blocks on a build."""
        with self._lock:
            hit = self._lru.get(grammar)
            if hit is not None:
                self._lru.move_to_end(grammar)
                self.num_memory_hits += 1
                done: Future[CompiledGrammar] = Future()
                done.set_result(hit)
                return done
            pending = self._inflight.get(grammar)
            if pending is None:
                pending = self._inflight[grammar] = self._pool.submit(self._job, grammar)
            return pending

    def get(self, grammar: str, timeout: float | None = None) -> CompiledGrammar:
        """The compiled grammar, waiting for its build; raises GrammarBuildError."""
        return self.get_async(grammar).result(timeout)

    def __len__(self) -> int:
        with self._lock:
            return len(self._lru)

    def close(self) -> None:
        """Stop the build threads (waits for running builds)."""
        self._pool.shutdown(wait=True)

    def _job(self, grammar: str) -> CompiledGrammar:
        try:
            compiled = build_grammar(grammar, self.vocab, self.tokenizer)
        except BaseException:
            with self._lock:
                self._inflight.pop(grammar, None)
            raise
        with self._lock:
            self._inflight.pop(grammar, None)
            self.num_builds += 1
            self._lru[grammar] = compiled
            while len(self._lru) > self.max_entries:
                self._lru.popitem(last=False)
        return compiled
