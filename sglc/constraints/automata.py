"""Character automata of the regex dialect: inclusion, disjointness, counterexamples.

`Dfa.of(pattern)` builds the complete deterministic automaton of a pattern in the dialect
(`regex.py`), over the same alphabet the pattern means: Unicode scalar values, classes as
Python's `re` reads them (Python's parse tree and `charsets` intervals, the pieces the
dialect check and the Index form use too). Transitions are labelled with code-point
intervals, so two automata need no shared alphabet: a product sweeps both interval lists.

    a & b, a | b, a - b, ~a     intersection, union, difference, complement
    a.example()                 a shortest text of the language (None when empty)
    a <= b  (a.issubset(b))     inclusion; (a - b).example() is a shortest counterexample
    a.isdisjoint(b)
    a.max_len()                 the longest text's length, None when the language is infinite
    a.completion_bytes()        the longest of the shortest accepted paths through each
                                state, in UTF-8 bytes (what a gen needs to be able to finish)
    a.to_regex()                a pattern of the dialect for the language (state elimination)

The spec checks (`sglc.ir.specs`) lower predicates to these; torch-free, like the whole leaf.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from sglc.constraints.charsets import CHAR_OPS, Intervals, charset, sre
from sglc.constraints.errors import ConstraintError
from sglc.constraints.regex import parse_pattern

MAX_DFA_STATES = 4000
"""The most states one automaton may have (a product or a subset construction that grows
past it raises `AutomatonTooLarge`); counted repeats and big schemas multiply states."""

MAX_CODE = 0x10FFFF
Edge = tuple[int, int, int]  # (lo, hi, target): the code points lo..hi go to target
_NICE = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ _-.,:;!?\"'()[]{}/\\\n"


class AutomatonTooLarge(ConstraintError):
    """An automaton past `MAX_DFA_STATES` (the check is left to run time)."""


class Dfa:
    """A complete DFA: state 0 starts; `edges[s]` cover every code point 0..MAX_CODE in
    order (a dead state takes what the language does not); `accepting` is a set of states.
    Immutable once built."""

    def __init__(self, edges: list[list[Edge]], accepting: frozenset[int]) -> None:
        self.edges = edges
        self.accepting = accepting

    # ---- construction --------------------------------------------------------------------
    @staticmethod
    def of(pattern: str) -> Dfa:
        """The automaton of a pattern in the dialect (ConstraintError otherwise)."""
        return _dfa_of(pattern)

    @staticmethod
    def of_any() -> Dfa:
        """Every text (of Unicode scalar values: no surrogates)."""
        return _dfa_of(r"[\s\S]*")

    @staticmethod
    def of_none() -> Dfa:
        """No text."""
        return Dfa([[(0, MAX_CODE, 0)]], frozenset())

    @property
    def num_states(self) -> int:
        return len(self.edges)

    # ---- boolean operations --------------------------------------------------------------
    def __and__(self, other: Dfa) -> Dfa:
        return _product(self, other, lambda a, b: a and b)

    def __or__(self, other: Dfa) -> Dfa:
        return _product(self, other, lambda a, b: a or b)

    def __sub__(self, other: Dfa) -> Dfa:
        return _product(self, other, lambda a, b: a and not b)

    def __invert__(self) -> Dfa:
        """The texts (of scalar values) not in the language."""
        return _product(self, Dfa.of_any(), lambda a, b: b and not a)

    def issubset(self, other: Dfa) -> bool:
        return (self - other).is_empty()

    __le__ = issubset

    def isdisjoint(self, other: Dfa) -> bool:
        return (self & other).is_empty()

    def equivalent(self, other: Dfa) -> bool:
        return self.issubset(other) and other.issubset(self)

    # ---- questions -----------------------------------------------------------------------
    def accepts(self, text: str) -> bool:
        state = 0
        for ch in text:
            state = _step(self.edges[state], ord(ch))
        return state in self.accepting

    def is_empty(self) -> bool:
        return self.example() is None

    def example(self) -> str | None:
        """A shortest text of the language (letters and digits preferred), None if empty."""
        came: dict[int, tuple[int, str] | None] = {0: None}
        todo = deque([0])
        while todo:
            state = todo.popleft()
            if state in self.accepting:
                return _path(came, state)
            for lo, hi, target in sorted(self.edges[state], key=lambda e: _nice_rank(e[0], e[1])):
                if target not in came:
                    came[target] = (state, _nice_char(lo, hi))
                    todo.append(target)
        return None

    def live_states(self) -> set[int]:
        """States reachable from the start from which an accepting state is reachable."""
        reach = _reachable(self.edges, [0])
        back: dict[int, set[int]] = {}
        for s in reach:
            for _, _, t in self.edges[s]:
                back.setdefault(t, set()).add(s)
        live, todo = set(), [s for s in reach if s in self.accepting]
        live.update(todo)
        while todo:
            for p in back.get(todo.pop(), ()):
                if p not in live:
                    live.add(p)
                    todo.append(p)
        return live

    def max_len(self) -> int | None:
        """The length of the longest text, None if the language is infinite (or empty)."""
        live = self.live_states()
        if not live:
            return None
        order = _topological(self.edges, live)
        if order is None:
            return None
        longest = {s: 0 for s in live}
        for s in reversed(order):
            targets = [t for _, _, t in self.edges[s] if t in live]
            tail = max((longest[t] + 1 for t in targets), default=0)
            longest[s] = tail if targets or s not in self.accepting else 0
        return longest[0]

    def completion_bytes(self) -> int | None:
        """The longest of the shortest accepted paths through each live state, in UTF-8
        bytes (each token carries at least one byte): a gen that may reach any live state
        can finish within this many tokens. None if the language is empty."""
        live = self.live_states()
        if not live:
            return None
        forward = _dijkstra(self.edges, live, [0])
        reverse: list[list[Edge]] = [[] for _ in self.edges]
        for s in live:
            for lo, hi, t in self.edges[s]:
                if t in live:
                    reverse[t].append((lo, hi, s))
        backward = _dijkstra(reverse, live, [s for s in live if s in self.accepting])
        return max(forward[s] + backward[s] for s in live)

    # ---- back to a regex -----------------------------------------------------------------
    def to_regex(self) -> str:
        """A pattern of the dialect whose language is this one (state elimination over the
        live states; ConstraintError for the empty language)."""
        return _to_regex(self)


# ---- the NFA (Thompson, with interval-labelled character states) --------------------------


class _Nfa:
    """States: character states (`chars[s]` intervals, `outs[s]` one successor), split
    states (`outs[s]` a tuple), and the final state (`outs[s]` None)."""

    def __init__(self) -> None:
        self.chars: list[Intervals | None] = []
        self.outs: list[Any] = []
        self.final = self.state(None, None)

    def state(self, chars: Intervals | None, out: Any) -> int:
        if len(self.chars) >= 8 * MAX_DFA_STATES:
            raise AutomatonTooLarge(f"the regex is too large for an automaton (more than "
                                    f"{8 * MAX_DFA_STATES} NFA states)")
        self.chars.append(chars)
        self.outs.append(out)
        return len(self.chars) - 1

    def seq(self, items: Sequence[Any], nxt: int) -> int:
        for op, av in reversed(items):
            nxt = self.item(op, av, nxt)
        return nxt

    def item(self, op: Any, av: Any, nxt: int) -> int:
        if op in CHAR_OPS:
            return self.state(charset(op, av), nxt)
        if op is sre.SUBPATTERN:
            return self.seq(list(av[-1]), nxt)
        if op is sre.BRANCH:
            return self.state(None, tuple(self.seq(list(b), nxt) for b in av[1]))
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            low, high, body = av
            items = list(body)
            if high is sre.MAXREPEAT:
                loop = self.state(None, ())
                self.outs[loop] = (self.seq(items, loop), nxt)
                cur = loop
            else:
                cur = nxt
                for _ in range(high - low):
                    cur = self.state(None, (self.seq(items, cur), nxt))
            for _ in range(low):
                cur = self.seq(items, cur)
            return cur
        if op is sre.AT:  # only a leading ^ / trailing $ pass the dialect: no-ops
            return nxt
        raise ConstraintError(f"unsupported regex construct {op}")  # pragma: no cover

    def closure(self, states: Sequence[int]) -> frozenset[int]:
        """Character states and the final state reachable by epsilon moves."""
        out, seen, todo = set(), set(states), list(states)
        while todo:
            s = todo.pop()
            if self.chars[s] is not None or self.outs[s] is None:
                out.add(s)
                continue
            for t in self.outs[s]:
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
        return frozenset(out)


@lru_cache(maxsize=256)
def _dfa_of(pattern: str) -> Dfa:
    tree = parse_pattern(pattern)
    nfa = _Nfa()
    start = nfa.closure([nfa.seq(list(tree.data), nfa.final)])
    index = {start: 0}
    sets = [start]
    edges: list[list[Edge]] = []
    k = 0
    while k < len(sets):
        current = sets[k]
        moves = [(iv, nfa.outs[s]) for s in sorted(current) if (iv := nfa.chars[s]) is not None]
        row: list[Edge] = []
        for lo, hi, targets in _segments(moves):
            target_set = nfa.closure(targets)
            if target_set not in index:
                if len(sets) >= MAX_DFA_STATES:
                    raise AutomatonTooLarge(f"the automaton has more than {MAX_DFA_STATES} "
                                            "states")
                index[target_set] = len(sets)
                sets.append(target_set)
            _append(row, lo, hi, index[target_set])
        edges.append(row)
        k += 1
    accepting = frozenset(i for i, st in enumerate(sets) if nfa.final in st)
    return Dfa(edges, accepting)


def _segments(moves: list[tuple[Intervals, int]]) -> list[tuple[int, int, tuple[int, ...]]]:
    """Split 0..MAX_CODE at every interval boundary; each piece with the targets of the
    moves covering it (the empty tuple: the dead set)."""
    points = {0, MAX_CODE + 1}
    for ivs, _ in moves:
        for lo, hi in ivs:
            points.add(lo)
            points.add(hi + 1)
    bounds = sorted(points)
    out = []
    for lo, nxt in zip(bounds, bounds[1:], strict=False):
        targets = tuple(t for ivs, t in moves if _covers(ivs, lo))
        out.append((lo, nxt - 1, targets))
    return out


def _covers(ivs: Intervals, code: int) -> bool:
    return any(lo <= code <= hi for lo, hi in ivs)


def _append(row: list[Edge], lo: int, hi: int, target: int) -> None:
    if row and row[-1][2] == target and row[-1][1] + 1 == lo:
        row[-1] = (row[-1][0], hi, target)
    else:
        row.append((lo, hi, target))


def _step(row: list[Edge], code: int) -> int:
    for lo, hi, target in row:
        if lo <= code <= hi:
            return target
    raise AssertionError("a complete DFA covers every code point")  # pragma: no cover


# ---- products --------------------------------------------------------------------------------


def _product(a: Dfa, b: Dfa, accept: Callable[[bool, bool], bool]) -> Dfa:
    index = {(0, 0): 0}
    pairs = [(0, 0)]
    edges: list[list[Edge]] = []
    k = 0
    while k < len(pairs):
        sa, sb = pairs[k]
        row: list[Edge] = []
        for lo, hi, ta, tb in _sweep(a.edges[sa], b.edges[sb]):
            if (ta, tb) not in index:
                if len(pairs) >= MAX_DFA_STATES:
                    raise AutomatonTooLarge(f"the product automaton has more than "
                                            f"{MAX_DFA_STATES} states")
                index[(ta, tb)] = len(pairs)
                pairs.append((ta, tb))
            _append(row, lo, hi, index[(ta, tb)])
        edges.append(row)
        k += 1
    accepting = frozenset(i for i, (sa, sb) in enumerate(pairs)
                          if accept(sa in a.accepting, sb in b.accepting))
    return Dfa(edges, accepting)


def _sweep(ra: list[Edge], rb: list[Edge]) -> list[tuple[int, int, int, int]]:
    out, i, j, lo = [], 0, 0, 0
    while lo <= MAX_CODE:
        hi = min(ra[i][1], rb[j][1])
        out.append((lo, hi, ra[i][2], rb[j][2]))
        lo = hi + 1
        if ra[i][1] == hi:
            i += 1
        if rb[j][1] == hi:
            j += 1
    return out


# ---- graph helpers ---------------------------------------------------------------------------


def _reachable(edges: list[list[Edge]], starts: list[int]) -> set[int]:
    seen, todo = set(starts), list(starts)
    while todo:
        for _, _, t in edges[todo.pop()]:
            if t not in seen:
                seen.add(t)
                todo.append(t)
    return seen


def _topological(edges: list[list[Edge]], live: set[int]) -> list[int] | None:
    """The live states in topological order, None when they contain a cycle."""
    indegree = {s: 0 for s in live}
    for s in live:
        for t in {t for _, _, t in edges[s] if t in live}:
            indegree[t] += 1
    todo = [s for s, d in indegree.items() if d == 0]
    order = []
    while todo:
        s = todo.pop()
        order.append(s)
        for t in {t for _, _, t in edges[s] if t in live}:
            indegree[t] -= 1
            if indegree[t] == 0:
                todo.append(t)
    return order if len(order) == len(live) else None


def _dijkstra(edges: list[list[Edge]], live: set[int], starts: list[int]) -> dict[int, int]:
    dist = {s: 0 for s in starts}
    heap = [(0, s) for s in starts]
    while heap:
        d, s = heapq.heappop(heap)
        if d > dist.get(s, d):
            continue
        for lo, _, t in edges[s]:
            if t not in live:
                continue
            nd = d + _utf8_len(lo)
            if nd < dist.get(t, nd + 1):
                dist[t] = nd
                heapq.heappush(heap, (nd, t))
    return dist


def _utf8_len(code: int) -> int:
    return 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4


def _nice_rank(lo: int, hi: int) -> int:
    for rank, ch in enumerate(_NICE):
        if lo <= ord(ch) <= hi:
            return rank
    return len(_NICE) + lo


def _nice_char(lo: int, hi: int) -> str:
    for ch in _NICE:
        if lo <= ord(ch) <= hi:
            return ch
    return chr(lo)


def _path(came: dict[int, tuple[int, str] | None], state: int) -> str:
    chars: list[str] = []
    node = came[state]
    while node is not None:
        prev, ch = node
        chars.append(ch)
        node = came[prev]
    return "".join(reversed(chars))


# ---- state elimination -----------------------------------------------------------------------

_CLASS_SPECIAL = frozenset("\\]^-[")
_UNIVERSE = ((0, 0xD7FF), (0xE000, MAX_CODE))
_LITERAL_SPECIAL = frozenset("\\.^$|?*+()[]{}")


def _char(code: int, in_class: bool) -> str:
    ch = chr(code)
    if 0x20 < code < 0x7F:
        special = _CLASS_SPECIAL if in_class else _LITERAL_SPECIAL
        return "\\" + ch if ch in special else ch
    if code == 0x20:
        return " "
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 \
        else f"\\U{code:08x}"


def class_regex(ivs: Sequence[tuple[int, int]]) -> str:
    """One character of the intervals, as a literal or a class of the dialect."""
    if len(ivs) == 1 and ivs[0][0] == ivs[0][1]:
        return _char(ivs[0][0], False)
    if tuple(ivs) in (((0, MAX_CODE),), _UNIVERSE):
        return r"[\s\S]"
    parts = []
    for lo, hi in ivs:
        parts.append(_char(lo, True) if lo == hi else f"{_char(lo, True)}-{_char(hi, True)}")
    return "[" + "".join(parts) + "]"


def _union(a: str | None, b: str) -> str:
    return b if a is None or a == b else f"{a}|{b}"


def _group(r: str) -> str:
    """`r` as one atom (for concatenation after an alternation, or a quantifier)."""
    if len(r) == 1 or (r.startswith("[") and r.endswith("]") and r.count("]") == 1) \
            or (len(r) == 2 and r[0] == "\\") or r == r"[\s\S]":
        return r
    return f"(?:{r})"


def _seq(*parts: str) -> str:
    return "".join(p if "|" not in p else f"(?:{p})" for p in parts)


def _bfs_depth(edges: list[list[Edge]], live: set[int]) -> dict[int, int]:
    depth, todo = {0: 0}, deque([0])
    while todo:
        s = todo.popleft()
        for _, _, t in edges[s]:
            if t in live and t not in depth:
                depth[t] = depth[s] + 1
                todo.append(t)
    return depth


def _to_regex(dfa: Dfa) -> str:
    live = dfa.live_states()
    if not live:
        raise ConstraintError("the language is empty: no regex matches nothing in the dialect")
    # generalized NFA over live states plus a new start (-1) and a new final (-2)
    arcs: dict[tuple[int, int], str] = {(-1, 0): ""}
    for s in sorted(live):
        by_target: dict[int, list[tuple[int, int]]] = {}
        for lo, hi, t in dfa.edges[s]:
            if t in live:
                by_target.setdefault(t, []).append((lo, hi))
        for t, ivs in by_target.items():
            arcs[(s, t)] = class_regex(ivs)
        if s in dfa.accepting:
            arcs[(s, -2)] = ""
    depth = _bfs_depth(dfa.edges, live)
    for s in sorted(live, key=lambda q: (-depth[q], q)):  # farthest first: nested, not flat
        loop = arcs.pop((s, s), None)
        ins = [(p, r) for (p, q), r in arcs.items() if q == s]
        outs = [(q, r) for (p, q), r in arcs.items() if p == s]
        for p, _ in ins:
            del arcs[(p, s)]
        for q, _ in outs:
            del arcs[(s, q)]
        middle = "" if loop is None else _group(loop) + "*"
        for p, r_in in ins:
            for q, r_out in outs:
                arcs[(p, q)] = _union(arcs.get((p, q)), _seq(r_in, middle, r_out))
    result = arcs.get((-1, -2), "")
    return result if result else "(?:)"


__all__ = ["MAX_DFA_STATES", "AutomatonTooLarge", "Dfa", "class_regex"]
