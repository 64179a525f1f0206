r"""State keys for the grammar path's mask cache: an LALR(1) parse kept in step with llguidance.

llguidance gives its parser state no identity, so every request at the same grammar position
computes the same mask again (tens of microseconds at a 128k vocabulary where many tokens
are allowed). :class:`StateKeys` follows the consumed text with Lark's LALR(1) tables and a
lexer of its own, and names each position by a small integer, its **key**:

    key = (the LALR state stack, the live terminals' automaton states inside the unfinished
           lexeme, and the bytes of a UTF-8 character still cut by a token boundary)

That is all the rest of the text's validity depends on: the stack decides which sequences of
terminals may follow (an LALR(1) property), and the automaton states decide how the rest of
the lexeme may go (a lexeme is committed greedily, when the next character cannot extend it,
and its terminal is the one live terminal that accepts it: llguidance's lexer, which is
contextual and greedy, cuts the same way). Equal keys therefore mean equal masks, and
:class:`~sglc.runtime.constrained.grammar_matcher.GrammarMatcher` keeps finished masks by key
in the regex path's :class:`~sglc.runtime.constrained.matcher.MaskCache`.

A key is never made where it could be wrong:

- these grammars get no :class:`StateKeys` (`for_grammar` returns None), and their masks
  are computed as before: one Lark cannot build as LALR(1) (a conflict, llguidance-only
  syntax); one with a terminal interegular cannot turn into an automaton, or that Python's
  regexes (Lark's) and Rust's (llguidance's) read differently (`\s`, `\w`, POSIX classes);
  one that imports terminals (`%import common.X`: Lark's definitions and llguidance's
  built-in ones are not known to be the same);
- a text the tracker cannot follow (two terminals accept the same lexeme, a lexeme that ends
  in no terminal) gets no key from there on (`step` returns None), until a rollback returns
  to a keyed position;
- past `max_keys` distinct positions (32,768 by default; stack nodes: four times that) new
  ones get no key, and the memo of moves is emptied at `max_moves` (65,536): the tables of
  a grammar stay within a few MB.

    for_grammar(lark_text)      StateKeys, or None where no sound key can be made
    keys.start                  the key of the empty text
    keys.step(key, token_id, token_bytes)   the key after one more token, or None
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from interegular import parse_pattern
from interegular.fsm import FSM, anything_else
from lark import Lark
from lark.parsers.lalr_analysis import Shift

from sglc.constraints.lark_regex import live_states

__all__ = ["StateKeys", "for_grammar"]

log = logging.getLogger(__name__)

Lexer = tuple[tuple[tuple[int, int], ...], bytes]  # ((terminal, automaton state)...), cut bytes
_FAIL = -1


class _Terminal:
    """One terminal's automaton: `step(state, char)` is the next live state or None."""

    __slots__ = ("finals", "initial", "live", "_alphabet", "_map", "_moves", "_symbols", "ends")

    def __init__(self, fsm: FSM) -> None:
        self._alphabet = fsm.alphabet
        self._map = fsm.map
        self.live = frozenset(live_states(fsm))
        self.initial = fsm.initial
        self.finals = frozenset(fsm.finals)
        # accepting states no character can leave alive: the lexeme is over as soon as it
        # gets there (a literal's last character)
        self.ends = frozenset(s for s in self.finals
                              if not any(t in self.live for t in fsm.map.get(s, {}).values()))
        # per state: char -> next live state (None: dead), filled as characters come
        self._moves: dict[int, dict[str, int | None]] = {s: {} for s in fsm.states}
        # the character classes some live state can move on and stay alive
        self._symbols = frozenset(symbol for state in self.live
                                  for symbol, target in fsm.map.get(state, {}).items()
                                  if target in self.live)

    def symbol(self, char: str) -> Any:
        """The character class of `char` here: characters of one class move alike."""
        return self._alphabet[char]

    def takes(self, char: str) -> bool:
        """Whether some live state moves on `char` and stays alive."""
        return self._alphabet[char] in self._symbols

    def takes_beyond_ascii(self) -> bool:
        """Whether some live state moves on a character past U+007F and stays alive."""
        return any((char is anything_else or ord(char) > 127) and symbol in self._symbols
                   for char, symbol in self._alphabet.items())

    def step(self, state: int, char: str) -> int | None:
        moves = self._moves[state]
        try:
            return moves[char]
        except KeyError:
            symbol = self._alphabet[char]
            target = None if symbol is None else self._map.get(state, {}).get(symbol)
            found = moves[char] = target if target in self.live else None
            return found


class StateKeys:
    """Keys of grammar positions for one Lark grammar (see the module docstring). Shared by
    every matcher of a compiled grammar (and thread-safe: a key is interned under a lock); the
    tables only grow, up to `max_keys` positions."""

    def __init__(self, lark: Lark, max_keys: int = 1 << 15, max_moves: int = 1 << 16) -> None:
        table = lark.parser.parser.parser.parse_table
        names = [t.name for t in lark.terminals]
        index = {name: i for i, name in enumerate(names)}
        self._terminals = [_Terminal(_fsm(t)) for t in lark.terminals]
        ignore = {index[name] for name in lark.ignore_tokens}
        self._ignore = frozenset(ignore)
        # per LALR state: terminal index -> (shift?, next state or (rule origin, length))
        self._actions: dict[int, dict[Any, tuple[bool, Any]]] = {}
        for state, row in table.states.items():
            acts: dict[Any, tuple[bool, Any]] = {}
            for symbol, (action, arg) in row.items():
                key = index.get(symbol, symbol)  # terminals by index, rules by name
                shift = action is Shift
                acts[key] = (True, arg) if shift else (False, (arg.origin.name, len(arg.expansion)))
            self._actions[state] = acts
        self._fresh: dict[int, tuple[tuple[int, int], ...]] = {}
        self._every_rule_ends = _every_rule_ends(lark)
        self.max_keys = max_keys
        self.max_moves = max_moves
        # whether the cache pays: keyed fills and hits, counted until the last checkpoint of
        # `probe` ((fills, least hit rate), ...); a checkpoint missed and the grammar's
        # matchers stop following keys (`caching` False)
        self.probe: tuple[tuple[int, float], ...] = ((256, 0.25), (1024, 0.5))
        self.fills = 0
        self.hits = 0
        self.caching = True
        # stacks are interned nodes (parent node, top LALR state): a push or a pop is O(1)
        # and a key holds one node id, however deep the stack
        self._nodes: dict[tuple[int, int], int] = {}
        self._stacks: list[tuple[int, int]] = []  # node -> (parent node, top LALR state)
        self._ids: dict[tuple[int, Lexer], int] = {}
        self._values: list[tuple[int, Lexer]] = []
        self._moves: dict[tuple[int, int], int] = {}
        self._lock = threading.Lock()
        (start_state,) = table.start_states.values()
        root = self._push(-1, start_state)
        start = None if root is None else self._intern(root, (self._fresh_lexer(start_state), b""))
        assert start is not None
        self.start: int = start

    def __len__(self) -> int:
        return len(self._values)

    def note_fill(self, hit: bool) -> None:
        """Count one keyed mask fill; at each checkpoint of `probe` (256 fills, then 1024),
        keep caching only if at least its share of them were hits (a quarter, then half).
        A miss after hits costs more than one without (llguidance computed no mask at the
        positions in between), so a cache that rarely hits is dearer than none: deep, rarely
        repeated positions (arithmetic nested at random) are such a workload. Hit rates
        rise as a cache fills, so the early checkpoint asks less: it only stops what
        clearly will not pay."""
        if not self.caching or self.fills >= self.probe[-1][0]:
            return
        self.fills += 1
        self.hits += hit
        for fills, rate in self.probe:
            if self.fills == fills and self.hits < rate * fills:
                self.caching = False

    @property
    def terminals(self) -> list[_Terminal]:
        """The grammar's terminals' automata, by terminal index."""
        return self._terminals

    def follows(self) -> list[frozenset[int]]:
        """Per terminal, the terminals that may come next in some text (a superset: those
        the LALR tables act on after shifting it), ignored terminals after any terminal and
        any terminal after an ignored one."""
        found: list[set[int]] = [set(self._ignore) for _ in self._terminals]
        for acts in self._actions.values():
            for symbol, (shift, target) in acts.items():
                if shift and isinstance(symbol, int):
                    found[symbol] |= {t for t in self._actions[target] if isinstance(t, int)}
        everything = set(range(len(self._terminals)))
        for t in self._ignore:
            found[t] = everything
        return [frozenset(f) for f in found]

    def pumps(self, char: str) -> bool:
        """Whether a run of `char` goes on wherever one `char` can: for every text `u`,
        `u + char * n` (n >= 1) begins some text of the grammar exactly when `u + char` does.

        That holds when `char` is always a lexeme of its own (a terminal takes it only as its
        whole text, and nothing extends it: no gluing), and every LALR state entered by
        shifting such a lexeme can shift one again. An LALR state's shift on a terminal is
        valid for every stack that reaches the state (its items are valid for every viable
        prefix that enters it), so after one `char` the next is always taken; and every rule
        derives some text (checked), so a viable prefix is a prefix of a text. `-` in
        arithmetic pumps (`1-` is followed by unary minuses, each of which takes another);
        `)` does not (a closing parenthesis needs an open one)."""
        matching = set()
        for t, term in enumerate(self._terminals):
            for state in term.live:
                target = term.step(state, char)
                if target is None:
                    continue
                if state != term.initial or target not in term.ends:
                    return False  # `char` inside or at the start of a longer lexeme
                matching.add(t)
        if not matching or matching & self._ignore or not self._every_rule_ends:
            return False
        entered = {target for acts in self._actions.values()
                   for symbol, (shift, target) in acts.items() if shift and symbol in matching}
        return all(any(self._actions[state].get(t, (False, None))[0] for t in matching)
                   for state in entered)

    def step(self, key: int | None, token_id: int, token_bytes: bytes) -> int | None:
        """The key after `token_bytes` (the text of `token_id`) from the position `key`; None
        where there is none (see the module docstring)."""
        if key is None:
            return None
        move = (key, token_id)
        found = self._moves.get(move)
        if found is None:
            stack, lexer = self._values[key]
            after = self._follow(stack, lexer, token_bytes)
            found = _FAIL if after is None else self._intern(*after)
            found = _FAIL if found is None else found
            if len(self._moves) >= self.max_moves:
                self._moves.clear()
            self._moves[move] = found
        return None if found == _FAIL else found

    # --- the tracker ---------------------------------------------------------------------------

    def _push(self, node: int, state: int) -> int | None:
        """The node of the stack `node` with `state` pushed (None past the table's bound)."""
        return self._interned(self._nodes, self._stacks, (node, state), 4 * self.max_keys)

    def _intern(self, stack: int, lexer: Lexer) -> int | None:
        """The key of a position (None past `max_keys`)."""
        return self._interned(self._ids, self._values, (stack, lexer), self.max_keys)

    def _interned(self, ids: dict[Any, int], values: list[Any], value: Any,
                  limit: int) -> int | None:
        """The id of `value` in the table (`ids`: value -> id, `values`: id -> value), added
        if new and the table holds fewer than `limit`; None past it."""
        found = ids.get(value)
        if found is None:
            with self._lock:  # an id must name one value, whatever thread asks
                found = ids.get(value)
                if found is None:
                    if len(values) >= limit:
                        return None
                    found = len(values)
                    values.append(value)
                    ids[value] = found
        return found

    def _fresh_lexer(self, state: int) -> tuple[tuple[int, int], ...]:
        """The live terminals at the start of a lexeme in LALR state `state`."""
        found = self._fresh.get(state)
        if found is None:
            allowed = {k for k in self._actions[state] if isinstance(k, int)} | self._ignore
            found = self._fresh[state] = tuple(sorted((t, self._terminals[t].initial)
                                                      for t in allowed))
        return found

    def _follow(self, stack: int, lexer: Lexer, data: bytes) -> tuple[int, Lexer] | None:
        live, cut = lexer
        data = cut + data
        try:
            text = data.decode("utf-8")
            rest = b""
        except UnicodeDecodeError as exc:
            if exc.reason != "unexpected end of data":
                return None
            text, rest = data[:exc.start].decode("utf-8"), data[exc.start:]
        for char in text:
            if len(live) == 1:  # one live terminal: the common case, without the tuple work
                (t, state), = live
                target = self._terminals[t].step(state, char)
                moved = None if target is None else ((t, target),)
            else:
                moved = self._extend(live, char)
            if moved is None:  # the lexeme is over: commit it, start the next with `char`
                stack = self._commit(stack, live)
                if stack is None:
                    return None
                moved = self._extend(self._fresh_lexer(self._stacks[stack][1]), char)
                if moved is None:
                    return None
            live = moved
            if len(live) == 1 and live[0][1] in self._terminals[live[0][0]].ends:
                stack = self._commit(stack, live)  # a lexeme nothing can extend
                if stack is None:
                    return None
                live = self._fresh_lexer(self._stacks[stack][1])
        return stack, (live, rest)

    def _extend(self, live: tuple[tuple[int, int], ...],
                char: str) -> tuple[tuple[int, int], ...] | None:
        terminals = self._terminals
        moved = []
        for t, state in live:
            target = terminals[t].step(state, char)
            if target is not None:
                moved.append((t, target))
        return tuple(moved) if moved else None

    def _commit(self, stack: int, live: tuple[tuple[int, int], ...]) -> int | None:
        """The stack after the lexeme `live` ends: exactly one live terminal must accept it."""
        done = [t for t, state in live if state in self._terminals[t].finals]
        if len(done) != 1:
            return None
        (terminal,) = done
        if terminal in self._ignore:
            return stack
        return self._shift(stack, terminal)

    def _shift(self, stack: int, terminal: int) -> int | None:
        """The stack after the LALR parser takes `terminal` (its reductions, then its shift);
        None where the terminal cannot come next."""
        actions, stacks = self._actions, self._stacks
        while True:
            act = actions[stacks[stack][1]].get(terminal)
            if act is None:
                return None
            shift, arg = act
            if shift:
                return self._push(stack, arg)
            origin, length = arg
            for _ in range(length):
                stack = stacks[stack][0]
            goto = actions[stacks[stack][1]].get(origin)
            if goto is None:  # pragma: no cover - the LALR tables always have the goto
                return None
            pushed = self._push(stack, goto[1])
            if pushed is None:
                return None
            stack = pushed


# constructs Python's `re` (Lark's reading, and interegular's) and llguidance's Rust regexes
# read differently: \s and \w take other Unicode sets, POSIX classes and class set operations
# are Rust's alone. A terminal with one gets its grammar no keys, rather than a guess.
_READ_APART = ("\\s", "\\S", "\\w", "\\W", "\\p", "\\P", "[:", "&&", "--", "~~")


def _fsm(terminal: Any) -> FSM:
    """The automaton of a Lark terminal (its regex, as Lark writes it)."""
    pattern = terminal.pattern
    if pattern.flags:
        raise ValueError(f"terminal {terminal.name} has flags {sorted(pattern.flags)}")
    regex = pattern.to_regexp()
    apart = next((mark for mark in _READ_APART if mark in regex), None)
    if apart is not None:
        raise ValueError(f"terminal {terminal.name} uses {apart}, which Python and Rust read "
                         "differently")
    return parse_pattern(regex).to_fsm().reduce()


def _every_rule_ends(lark: Lark) -> bool:
    """Whether every rule of the grammar derives some text (a fixpoint: a rule does once
    every rule in one of its expansions does)."""
    rules = [(rule.origin.name, [s.name for s in rule.expansion if not s.is_term])
             for rule in lark.rules]
    ends: set[str] = set()
    grew = True
    while grew:
        grew = False
        for origin, needs in rules:
            if origin not in ends and all(n in ends for n in needs):
                ends.add(origin)
                grew = True
    return all(origin in ends for origin, _ in rules)


def for_grammar(text: str, max_keys: int = 1 << 15) -> StateKeys | None:
    """The StateKeys of a Lark grammar text; None where Lark cannot build it as LALR(1) or a
    terminal has no automaton (the grammar's masks are then never cached)."""
    if "%import" in text:  # Lark's common.lark and llguidance's built-in one may differ
        return None
    try:
        return StateKeys(Lark(text, parser="lalr"), max_keys=max_keys)
    except Exception as exc:  # noqa: BLE001 - Lark's and interegular's many errors: no keys
        log.debug("no mask-cache keys for this grammar: %s", exc)
        return None
