"""Tokens a grammar can never allow, found before decoding, so llguidance walks fewer.

llguidance computes a mask by walking the token trie, and pays for every token whose bytes
start like the grammar's text before they go wrong: at a 128k vocabulary trained on code,
arithmetic's grammar meets about 23,000 tokens made only of digits, operators and
parentheses, and about 22,000 of them (`1000`, `0.000`, `2..`) can stand nowhere in an
arithmetic text. `never_tokens` finds such tokens once per grammar; the grammar's llguidance
tokenizer then lists them as special tokens (never text), and each mask walks only the rest.
The masks are the same: a token left out is one no mask would allow.

A token can appear in a text only as a piece of a string of the grammar's *terminal
language*, a regular superset of it: the terminals' automata chained as the grammar may
chain them (`StateKeys.follows`: which terminal may come after which). The check runs, for
every token at once (numpy, by character position), the set of (terminal, automaton state)
pairs it could start from (all of them) through its characters; a token that leaves no pair
alive is never allowed. Tokens that are not whole UTF-8 text are kept (never pruned).

    never_tokens(keys, token_bytes)   Never: the ids of tokens the grammar can never allow,
                                      and how many of them a mask's walk would enter
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from sglc.runtime.constrained.grammar_keys import StateKeys

__all__ = ["Never", "never_tokens"]


class Never(NamedTuple):
    """Tokens a grammar never allows: `ids` (sorted), and `walked`, how many of them start
    with a character some terminal can take (the trie walk enters those; the others it
    leaves at their first byte, so leaving them out saves little)."""

    ids: np.ndarray
    walked: int


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
    decoded: list[tuple[int, str]] = []
    for tid, data in enumerate(token_bytes):
        if data:
            try:
                decoded.append((tid, data.decode("utf-8")))
            except UnicodeDecodeError:  # a piece of a character: kept
                pass
    chars = set().union(*(text for _, text in decoded))
    dead = {char for char in chars if not any(t.takes(char) for t in pairs.terminals)}
    texts: list[tuple[int, str]] = []
    never: list[int] = []
    walked = 0
    for tid, text in decoded:
        if dead.isdisjoint(text):
            texts.append((tid, text))
        else:  # a character no terminal takes
            never.append(tid)
            walked += text[0] not in dead
    if texts:
        ids = np.array([tid for tid, _ in texts])
        lengths = np.array([len(text) for _, text in texts])
        codes = np.full((len(texts), int(lengths.max())), -1, dtype=np.int64)
        for row, (_, text) in enumerate(texts):
            codes[row, :len(text)] = [ord(char) for char in text]
        alive = np.ones((len(texts), len(pairs.pairs)), dtype=np.float32)
        for pos in range(codes.shape[1]):
            rows = np.flatnonzero(lengths > pos)
            order = rows[np.argsort(codes[rows, pos], kind="stable")]
            chars, starts = np.unique(codes[order, pos], return_index=True)
            for code, members in zip(chars.tolist(), np.split(order, starts[1:]), strict=True):
                moved = alive[members] @ pairs.moves(chr(code))
                alive[members] = np.minimum(moved, 1.0)
        dead = ids[~alive.any(axis=1)].tolist()
        never.extend(dead)
        walked += len(dead)
    return Never(np.array(sorted(never), dtype=np.int64), walked)
