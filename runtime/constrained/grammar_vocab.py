"""Tokens a grammar can never allow, found before decoding, so llguidance walks fewer.

llguidance computes a mask by walking the token trie, and pays for every token whose bytes
start like the grammar's text before they go wrong: at a 128k vocabulary trained on code,
arithmetic's grammar meets about 23,000 tokens made only of digits, operators and
parentheses, and about 22,000 of them (`1000`, `0.000`, `2..`) can stand nowhere in an
arithmetic text. `never_tokens` finds such tokens once per grammar; the grammar's llguidance
tokenizer then gives them no bytes (llguidance never allows an empty token, nor puts it in
its trie), and each mask walks only the rest.
The masks are the same: a token left out is one no mask would allow.

Tokens that differ only in characters no terminal tells apart (`123` and `456` where every
terminal takes any digit alike: the same class in every terminal's automaton) are allowed
together at every position, so `token_classes` keeps one of each large class in the walk
(the representative) and gives the rest no bytes too; a mask where the representative is
allowed then ORs in a row of its whole class, and a class member is fed to llguidance as its
representative (the same automaton moves, so the same parser state).

Runs of one character are the other kind of class. Where a character always makes a lexeme
of its own and every parser state that shifts it shifts another (`StateKeys.pumps`: `-` in
arithmetic, whose unary minus nests), `u + "-" * n` begins a text exactly when `u + "-"`
does. A 128k vocabulary trained on code holds `-` runs up to 71 long (markdown rules), and
llguidance walks each character of them as a lexeme and a parser step, at every mask. The
shortest run with one prefix `u` represents the longer ones, which llguidance reads as it
and then one `-` token per character left.

A token can appear in a text only as a piece of a string of the grammar's *terminal
language*, a regular superset of it: the terminals' automata chained as the grammar may
chain them (`StateKeys.follows`: which terminal may come after which). The check runs, for
every token at once (numpy, by character position), the set of (terminal, automaton state)
pairs it could start from (all of them) through its characters; a token that leaves no pair
alive is never allowed. Tokens that are not whole UTF-8 text (a piece of a character) are
kept, unless no terminal takes any character past ASCII: then no text holds such a byte.

    never_tokens(keys, token_bytes)   Never: the ids of tokens the grammar can never allow,
                                      and how many of them a mask's walk would enter
    token_classes(keys, token_bytes, never, words)
                                      TokenClasses: the large classes of the other tokens,
                                      and the runs
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from sglc.runtime.constrained.grammar_keys import StateKeys
from sglc.runtime.constrained.masks import row_allows, row_of

__all__ = ["MAX_CLASSES", "MIN_CLASS", "MIN_RUN_SAVED", "Never", "TokenClasses", "never_tokens",
           "token_classes"]


class Never(NamedTuple):
    """Tokens a grammar never allows: `ids` (sorted), and `walked`, how many of them start
    with a character some terminal can take (the trie walk enters those; the others it
    leaves at their first byte, so leaving them out saves little)."""

    ids: np.ndarray
    walked: int


MIN_CLASS = 256
"""A class of tokens no terminal tells apart is walked as one token from this many members."""
MAX_CLASSES = 16
"""At most this many classes of each kind (the largest) are walked as one: a mask ORs in a
row per class whose representative it allows."""
MIN_RUN_SAVED = 8
"""A class of runs is walked as one where its longest member is at least this many
characters longer than its representative (the characters the trie walk no longer takes)."""


class TokenClasses:
    """Classes of tokens a grammar allows together (see the module docstring): `reps`, one
    token per class (the one llguidance walks), `rows`, each class's members as a mask row
    (int32 words), and `spell`, member -> the ids llguidance reads it as, for the members it
    does not know (`members`): its representative, which moves every automaton alike, or
    for a run the representative and then one token per character left."""

    def __init__(self, classes: Sequence[np.ndarray], words: int,
                 spell: dict[int, tuple[int, ...]] | None = None) -> None:
        self.reps = [int(members[0]) for members in classes]
        self.rows = [row_of(members, words) for members in classes]
        self.spell: dict[int, tuple[int, ...]] = {}
        for members in classes:
            self.spell.update(dict.fromkeys(members[1:].tolist(), (int(members[0]),)))
        self.spell.update(spell or {})

    @property
    def members(self) -> list[int]:
        """The members llguidance does not walk: all but the representatives."""
        return list(self.spell)

    def expand(self, words: np.ndarray) -> None:
        """OR into a mask row (int32 words, llguidance's answer) every class whose
        representative it allows."""
        for rep, row in zip(self.reps, self.rows, strict=True):
            if row_allows(words, rep):
                np.bitwise_or(words, row, out=words)


def token_classes(keys: StateKeys, token_bytes: Sequence[bytes | None], never: np.ndarray,
                  words: int) -> TokenClasses | None:
    """Tokens llguidance need not walk one by one, as classes with a representative each;
    None where there are none. Two kinds, at most `MAX_CLASSES` of each:

    - tokens alike: the largest classes (at least `MIN_CLASS` members) of the ASCII text
      tokens not in `never` whose characters, position by position, fall in one class of
      every terminal's automaton; the representative is the smallest id;
    - runs: the tokens `u + c * n` (one `u`, n >= 1, a character `c` where
      `StateKeys.pumps(c)`) are allowed exactly where the shortest of them, `u + c * m`
      (the representative), is; llguidance reads a member as the representative and then
      `n - m` tokens `c`. Walked as one where that saves at least `MIN_RUN_SAVED`
      characters (`----...` in arithmetic: a lexeme and a parser step per character)."""
    signatures: dict[tuple, str] = {}  # per character class, one character names it
    table = {}
    for code in range(128):
        signature = tuple(t.symbol(chr(code)) for t in keys.terminals)
        table[code] = signatures.setdefault(signature, chr(len(signatures)))
    left_out = set(never.tolist())
    alike: dict[str, list[int]] = {}
    for tid, data in enumerate(token_bytes):
        if data and data.isascii() and tid not in left_out:
            alike.setdefault(data.decode("ascii").translate(table), []).append(tid)
    large = sorted((ids for ids in alike.values() if len(ids) >= MIN_CLASS),
                   key=len, reverse=True)[:MAX_CLASSES]
    classes = [np.array(ids, dtype=np.int64) for ids in large]
    taken = left_out | {int(t) for ids in classes for t in ids}
    runs, spell = _run_classes(keys, token_bytes, taken)
    if not classes and not runs:
        return None
    return TokenClasses(classes + runs, words, spell)


def _run_classes(keys: StateKeys, token_bytes: Sequence[bytes | None], taken: set[int]
                 ) -> tuple[list[np.ndarray], dict[int, tuple[int, ...]]]:
    """The classes of runs (see `token_classes`) among the ASCII tokens not `taken`, and
    how llguidance spells their members."""
    pumping = {code for code in range(32, 127) if keys.pumps(chr(code))}
    if not pumping:
        return [], {}
    groups: dict[tuple[bytes, int], list[tuple[int, int]]] = {}  # (u, c) -> [(n, id)]
    single: dict[int, int] = {}  # c -> the id of the token `c`
    for tid, data in enumerate(token_bytes):
        if not data or not data.isascii() or tid in taken or data[-1] not in pumping:
            continue
        code = data[-1]
        n = len(data) - len(data.rstrip(bytes([code])))
        groups.setdefault((data[:-n], code), []).append((n, tid))
        if n == len(data) == 1:
            single.setdefault(code, tid)
    found: list[tuple[int, np.ndarray, dict[int, tuple[int, ...]]]] = []
    for (_, code), runs in groups.items():
        runs.sort()
        m, rep = runs[0]
        saved = runs[-1][0] - m
        if code not in single or saved < MIN_RUN_SAVED:
            continue
        spell = {tid: (rep,) + (single[code],) * (n - m) for n, tid in runs[1:] if n > m}
        if spell:
            found.append((saved, np.array([rep, *spell], dtype=np.int64), spell))
    found = sorted(found, key=lambda item: -item[0])[:MAX_CLASSES]
    return [ids for _, ids, _ in found], {t: s for *_, run in found for t, s in run.items()}


class _Pairs:
    """The (terminal, live automaton state) pairs of a grammar, and their moves on one
    character as a 0/1 matrix (pairs x pairs), built per character on first use."""

    def __init__(self, keys: StateKeys) -> None:
        self.terminals = keys.terminals
        self.follows = keys.follows()
        self.pairs = [(t, q) for t, term in enumerate(self.terminals) for q in sorted(term.live)]
        self.index = {pair: i for i, pair in enumerate(self.pairs)}
        self._moves: dict[str, np.ndarray | None] = {}

    def moves(self, char: str) -> np.ndarray | None:
        """The move matrix of `char` (None where no pair moves on it)."""
        if char in self._moves:
            return self._moves[char]
        size = len(self.pairs)
        matrix = np.zeros((size, size), dtype=np.float32)
        terminals, index = self.terminals, self.index
        starts = {}  # terminal -> its state after `char` from its start, if alive
        for t, term in enumerate(terminals):
            target = term.step(term.initial, char)
            if target is not None:
                starts[t] = index[(t, target)]
        for i, (t, q) in enumerate(self.pairs):
            term = terminals[t]
            target = term.step(q, char)
            if target is not None:  # the lexeme goes on
                matrix[i, index[(t, target)]] = 1.0
            if q in term.finals:  # the lexeme may end here, the next begin with `char`
                for nxt in self.follows[t]:
                    if nxt in starts:
                        matrix[i, starts[nxt]] = 1.0
        found = matrix if matrix.any() else None
        self._moves[char] = found
        return found


def never_tokens(keys: StateKeys, token_bytes: Sequence[bytes | None]) -> Never:
    """The text tokens that no text of the grammar holds (see the module docstring);
    non-text ids (None) are not listed."""
    pairs = _Pairs(keys)
    ascii_only = not any(t.takes_beyond_ascii() for t in pairs.terminals)
    ids: list[int] = []
    texts: list[str] = []
    cut: list[int] = []  # pieces of characters where every text is ASCII: never allowed
    cut_walked = 0
    for tid, data in enumerate(token_bytes):
        if data:
            try:
                texts.append(data.decode("utf-8"))
                ids.append(tid)
            except UnicodeDecodeError:  # a piece of a character: kept, unless text is ASCII
                if ascii_only:
                    cut.append(tid)
                    first = data[0]
                    cut_walked += first < 128 and any(t.takes(chr(first))
                                                      for t in pairs.terminals)
    if not texts:
        return Never(np.asarray(cut, dtype=np.int64), cut_walked)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    flat = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    # characters no terminal takes: a token holding one is never allowed, and a mask's walk
    # enters it only if its first character is taken
    chars = np.unique(flat)
    dead = chars[[not any(t.takes(chr(c)) for t in pairs.terminals) for c in chars.tolist()]]
    is_dead = np.isin(flat, dead)
    owner = np.repeat(np.arange(len(texts)), lengths)
    holds_dead = np.bincount(owner, weights=is_dead, minlength=len(texts)) > 0
    first_dead = is_dead[np.cumsum(lengths) - lengths]
    alive = ~holds_dead
    alive[alive] = _survive(pairs, flat[alive[owner]], lengths[alive])
    never = np.flatnonzero(~alive)
    walked = int(np.count_nonzero(~first_dead[never])) + cut_walked
    found = np.concatenate([np.asarray(ids, dtype=np.int64)[never],
                            np.asarray(cut, dtype=np.int64)])
    return Never(np.sort(found), walked)


def _survive(pairs: _Pairs, flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """For texts given as their characters' codes end to end (`flat`) and their `lengths`:
    whether some pair stays alive through all of each. Runs level by level over the texts' prefix
    trie, so texts that share a prefix share its work (one matrix row per distinct prefix);
    a text stops being walked as soon as its prefix leaves no pair alive."""
    survive = np.zeros(len(lengths), dtype=bool)
    if not len(lengths):
        return survive
    width = int(lengths.max())
    codes = np.zeros((len(lengths), width), dtype=np.int64)
    codes[np.arange(width) < lengths[:, None]] = flat
    walking = np.arange(len(lengths))
    node = np.zeros(len(lengths), dtype=np.int64)  # each walking text's prefix at this level
    alive = np.ones((1, len(pairs.pairs)), dtype=np.float32)  # per prefix of the level
    base = int(flat.max()) + 1
    for pos in range(width):
        prefixes, node = np.unique(node * base + codes[walking, pos], return_inverse=True)
        parents, chars = np.divmod(prefixes, base)
        moved = np.zeros((len(prefixes), len(pairs.pairs)), dtype=np.float32)
        order = np.argsort(chars, kind="stable")
        firsts, starts = np.unique(chars[order], return_index=True)
        for code, members in zip(firsts.tolist(), np.split(order, starts[1:]), strict=True):
            moves = pairs.moves(chr(code))
            if moves is not None:
                moved[members] = np.minimum(alive[parents[members]] @ moves, 1.0)
        live = moved.any(axis=1)[node]
        ends = lengths[walking] == pos + 1
        survive[walking[ends & live]] = True
        going = live & ~ends
        walking, node, alive = walking[going], node[going], moved
        if not len(walking):
            break
    return survive
