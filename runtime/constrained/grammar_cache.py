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
has no serialized form). At a 128k vocabulary a Lark grammar's build takes 0.1-0.6 s, mostly
our own Python (its keys, the tokens its tokenizer leaves out, that tokenizer), which holds
the GIL for part of it; keeping those tokens on disk per (grammar, vocabulary) is not done.

llguidance's "slices" (tokens split by a few regexes, JSON-string-like characters by default,
each with its own token trie) let a mask add a whole slice at once where the current lexeme
admits every token of it: inside a JSON string, a comment. Where no lexeme can (a grammar
whose terminals are narrow classes and literals) they only split the trie walk, and masks are
computed faster without them. `slices_help` tells the two kinds apart from the grammar text,
and :class:`Tokenizers` hands each grammar the tokenizer that suits it (the masks are the same
either way; only their cost differs). A Lark grammar with state keys may get a tokenizer of
its own, where enough tokens would be walked that need not be (`grammar_vocab`): those it
never allows, and all but one of each large class of tokens it allows together.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import llguidance

from sglc.constraints.grammar import is_llguidance_grammar
from sglc.runtime.constrained.grammar_keys import StateKeys, for_grammar
from sglc.runtime.constrained.grammar_vocab import TokenClasses, never_tokens, token_classes
from sglc.runtime.constrained.vocabulary import TokenVocabulary

__all__ = ["CompiledGrammar", "GrammarBuildError", "GrammarCache", "GrammarTokenizer", "Tokenizers",
           "build_grammar", "llg_tokenizer", "slices_help"]

Encoder = Callable[[str], list[int]]

MIN_LEFT_OUT = 1024
"""A grammar gets a tokenizer of its own when at least this many tokens it never allows
would be entered by a mask's trie walk (`Tokenizers.for_grammar`)."""


class GrammarBuildError(ValueError):
    """llguidance could not compile a grammar for this vocabulary (the message says why)."""


@dataclass(eq=False)
class CompiledGrammar:
    """One grammar compiled for one vocabulary: `template` is a fresh matcher that
    :meth:`new_matcher` copies; `keys` name its positions for the mask cache (None where
    the grammar has no sound keys: `grammar_keys`); `left_out` counts the tokens its
    llguidance tokenizer gives no bytes, and `classes` maps the members of token classes it
    walks as one token to their representative (`grammar_vocab`). `extras` holds per-grammar
    helpers (stop masks, the mask cache)."""

    grammar: str
    vocab: TokenVocabulary
    template: llguidance.LLMatcher
    build_seconds: float = 0.0
    keys: StateKeys | None = None
    left_out: int = 0
    classes: TokenClasses | None = None
    extras: dict[str, Any] = field(default_factory=dict, repr=False)

    def new_matcher(self) -> llguidance.LLMatcher:
        return self.template.deep_copy()


class _Tokenizer:
    """What ``llguidance.TokenizerWrapper`` asks of a tokenizer: the bytes of every id (the
    vocabulary's; a placeholder for the non-text ids it lists as special; none for the ids
    in `never`) and `__call__`, text -> ids (used to tokenize forced text).

    llguidance calls `__call__` from inside a mask computation whenever the grammar forces
    bytes (it turns them into the one token the mask then allows), through the GIL and the
    model tokenizer: the dearest part of such a mask. The same forced texts come back at every
    visit of a grammar position (a keyword, a closing bracket), so the answers are memoized:
    a pure function of the text, at most `memo_entries` of them (the memo is emptied when
    full)."""

    def __init__(self, vocab: TokenVocabulary, encode: Encoder | None,
                 memo_entries: int = 4096, never: Iterable[int] = ()) -> None:
        self.vocab = vocab
        self.eos_token_id = vocab.eos_id
        self.bos_token_id = None
        self.tokens = [b if b is not None else f"<|sglc:{i}|>".encode()
                       for i, b in enumerate(vocab.token_bytes)]
        for i in never:  # no bytes: llguidance never allows them, nor puts them in its trie
            self.tokens[i] = b""
        self.special_token_ids = [i for i, b in enumerate(vocab.token_bytes) if b is None]
        self._encode = encode
        self._memo: dict[str, list[int]] = {}
        self._memo_entries = memo_entries

    def __call__(self, text: str) -> list[int]:
        hit = self._memo.get(text)
        if hit is None:
            if len(self._memo) >= self._memo_entries:
                self._memo.clear()
            hit = self._memo[text] = self._ids(text)
        return list(hit)

    def _ids(self, text: str) -> list[int]:
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
        vocab, known = self.vocab, self.tokens  # known: not left out (b"" to llguidance)
        return (all(0 <= t < vocab.width and vocab.token_bytes[t] is not None and known[t]
                    for t in ids)
                and vocab.decode(ids) == expected)

    def _greedy(self, data: bytes) -> list[int]:
        ids, pos, longest = [], 0, self.vocab.max_token_len
        table = self.vocab.bytes_to_ids
        while pos < len(data):
            for size in range(min(longest, len(data) - pos), 0, -1):
                hit = next((t for t in table.get(data[pos:pos + size], ()) if self.tokens[t]),
                           None)
                if hit is not None:
                    ids.append(hit)
                    pos += size
                    break
            else:  # a byte no token spells: the grammar cannot force it anyway
                return ids
        return ids


def llg_tokenizer(vocab: TokenVocabulary, encode: Encoder | None,
                  never: Iterable[int] = ()) -> llguidance.LLTokenizer:
    """The llguidance tokenizer of a vocabulary; `encode` is the model tokenizer's
    text -> ids (None: longest-match greedy). The ids in `never`, tokens a grammar can never
    allow (`grammar_vocab`), get no bytes: llguidance never allows an empty token and leaves
    it out of its trie (which makes such a tokenizer about 8x faster to build at 128k than
    one that lists them as special tokens, and its masks a little faster)."""
    return llguidance.LLTokenizer(llguidance.TokenizerWrapper(_Tokenizer(vocab, encode,
                                                                         never=never)))


# regex constructs under which a lexeme can admit a whole slice (a negated or any-character
# class: the default slices are runs of "any character but a quote, backslash or control")
_SLICEABLE = ("[^", ".*", ".+", ".{", "\\S", "\\W", "\\D", "\\P", "%json")


def slices_help(grammar: str) -> bool:
    """Whether llguidance's default slices can speed up this grammar's masks: a JSON schema,
    or a Lark text with a negated or any-character class (see the module docstring). Only
    the cost of a mask depends on the answer, never the mask."""
    try:
        parts = json.loads(grammar)["grammars"]
    except (ValueError, KeyError, TypeError):  # Lark text itself
        return any(mark in grammar for mark in _SLICEABLE)
    for part in parts:
        if not isinstance(part, dict) or part.get("json_schema") is not None:
            return True
        lark = part.get("lark_grammar")
        if not isinstance(lark, str) or any(mark in lark for mark in _SLICEABLE):
            return True
    return False


class GrammarTokenizer(NamedTuple):
    """A grammar's llguidance tokenizer (`Tokenizers.for_grammar`): how many tokens it gives
    no bytes, and the token classes whose members it walks as their representative."""

    tokenizer: llguidance.LLTokenizer
    left_out: int = 0
    classes: TokenClasses | None = None


class Tokenizers:
    """The llguidance tokenizers of one vocabulary: with the default slices and without
    (:meth:`for_grammar` picks), built once each on first use."""

    def __init__(self, vocab: TokenVocabulary, encode: Encoder | None) -> None:
        self.vocab = vocab
        self._encode = encode
        self._sliced: llguidance.LLTokenizer | None = None
        self._plain: llguidance.LLTokenizer | None = None
        self._lock = threading.Lock()

    @property
    def sliced(self) -> llguidance.LLTokenizer:
        with self._lock:
            if self._sliced is None:
                self._sliced = llg_tokenizer(self.vocab, self._encode)
            return self._sliced

    @property
    def plain(self) -> llguidance.LLTokenizer:
        sliced = self.sliced
        with self._lock:
            if self._plain is None:
                self._plain = sliced.with_slices([])
            return self._plain

    def for_grammar(self, grammar: str, keys: StateKeys | None = None) -> GrammarTokenizer:
        """The tokenizer for `grammar`: the sliced one where slices help; else, where the
        grammar's keys find at least `MIN_LEFT_OUT` tokens a mask's walk would enter and
        need not (tokens it never allows, and all but one of each large class of tokens it
        allows together: `grammar_vocab`), a tokenizer of its own without them (0.1-0.5 s
        at 128k tokens, finding them included; off the decode loop); else the plain one."""
        if slices_help(grammar):
            return GrammarTokenizer(self.sliced)
        if keys is not None:
            vocab = self.vocab
            never = never_tokens(keys, vocab.token_bytes)
            classes = token_classes(keys, vocab.token_bytes, never.ids, vocab.mask_words)
            members = [] if classes is None else classes.members
            if never.walked + len(members) >= MIN_LEFT_OUT:
                left_out = never.ids.tolist() + members
                own = llg_tokenizer(vocab, self._encode, left_out)
                return GrammarTokenizer(own.with_slices([]), len(left_out), classes)
        return GrammarTokenizer(self.plain)


def build_grammar(grammar: str, vocab: TokenVocabulary,
                  tokenizer: llguidance.LLTokenizer | Tokenizers) -> CompiledGrammar:
    """Compile (no caching) an llguidance grammar, and the state keys of a Lark text;
    given the vocabulary's `Tokenizers`, on the tokenizer `Tokenizers.for_grammar` picks
    (leaving out the tokens the grammar never allows). GrammarBuildError says why it
    failed."""
    start = time.perf_counter()
    keys = None if is_llguidance_grammar(grammar) else for_grammar(grammar)
    picked = (tokenizer.for_grammar(grammar, keys) if isinstance(tokenizer, Tokenizers)
              else GrammarTokenizer(tokenizer))
    template = llguidance.LLMatcher(picked.tokenizer, grammar, log_level=0)
    if template.is_error():
        raise GrammarBuildError(f"cannot compile the grammar: {template.get_error()}")
    return CompiledGrammar(grammar, vocab, template, time.perf_counter() - start, keys,
                           picked.left_out, picked.classes)


class GrammarCache:
    """Thread-safe LRU of :class:`CompiledGrammar` by grammar text, for one vocabulary;
    builds run on `max_workers` threads, and the llguidance tokenizers are made by the first."""

    def __init__(self, vocab: TokenVocabulary, encode: Encoder | None, *,
                 max_entries: int = 64, max_workers: int = 2) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.vocab = vocab
        self.max_entries = max_entries
        self.num_builds = 0
        self.num_memory_hits = 0
        self.tokenizers = Tokenizers(vocab, encode)
        self._lock = threading.Lock()
        self._lru: OrderedDict[str, CompiledGrammar] = OrderedDict()
        self._inflight: dict[str, Future[CompiledGrammar]] = {}
        self._pool = ThreadPoolExecutor(max_workers=max_workers,
                                        thread_name_prefix="sglc-grammar")

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
            compiled = build_grammar(grammar, self.vocab, self.tokenizers)
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
