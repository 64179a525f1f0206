"""Regular Lark grammars as regexes, so they decode on the regex path.

A Lark grammar whose rules never recurse names a regular language, but only when its
terminals split where the rules split: a lexer (Lark's, llguidance's) cuts the text into the
longest terminals it can, so `start: NAME NAME` with `NAME: /[a-z]+/` accepts no text at all,
while the regex `[a-z]+[a-z]+` would accept `ab`. `grammar_regex` therefore gives the regex
of a grammar only when it can show that the two agree, and otherwise says why not:

- the rules (`start` and what it reaches) do not recurse, and use only sequences,
  alternatives, `[x]`, `x?`, `x*`, `x+`, `x~n`, `x~n..m`, rule and terminal references and
  literals; no `%ignore`, no templates, no flags on literals or regexes;
- every terminal matches a nonempty text, and its regex uses no class whose meaning depends
  on Unicode tables (`\\d \\w \\s` and their negations, `.`): the checks below run on
  `interegular`'s automata, which read such classes as ASCII;
- no terminal C can run on past the end of a terminal A into what the rules let follow A
  (no text of C starts with a text of A and then a prefix of a terminal that may follow A):
  the lexer never cuts later than the rules do;
- no terminal's text is a proper prefix of another terminal's text, nor a text of another
  terminal (two terminals of one language are one): the lexer never cuts earlier, nor takes
  one terminal for another (Lark's lexer tries terminals in an order, not longest first).

Under these conditions a text matches the regex exactly when the lexer cuts it into the
terminals of a derivation, i.e. when the grammar accepts it.

    grammar_regex(text)   the regex (Python `re` syntax) of a regular Lark grammar;
                          NotRegular (a ValueError) says why a grammar is not taken
"""

from __future__ import annotations

from dataclasses import dataclass

import interegular
from interegular.fsm import FSM
from lark import Token, Tree
from lark.grammar import NonTerminal, Terminal
from lark.load_grammar import GrammarBuilder, _literal_to_pattern

__all__ = ["NotRegular", "grammar_regex"]

MAX_NODES = 20_000  # rule references inlined, at most: past it the grammar stays a grammar
MAX_REGEX_CHARS = 20_000
MAX_TERMINALS = 200  # distinct terminals checked pairwise, at most
MAX_TERMINAL_STATES = 2_000  # states of one terminal's automaton, at most
_META = set("\\.^$*+?{}[]|()")


class NotRegular(ValueError):  # noqa: N818 - a verdict, not a failure
    """Why a grammar does not take the regex path (the grammar path decodes it exactly)."""


# the expansion of the rules: ("seq", parts) ("alt", parts) ("rep", node, lo, hi|None) ("term", regex)
Node = tuple


@dataclass
class _Builder:
    rules: dict[str, Tree]
    terminals: dict[str, Tree]
    nodes: int = 0

    def rule(self, name: str, stack: tuple[str, ...]) -> Node:
        if name in stack:
            raise NotRegular(f"rule {name!r} is recursive")
        if name not in self.rules:
            raise NotRegular(f"rule {name!r} is not defined")
        return self.node(self.rules[name], (*stack, name))

    def node(self, tree: object, stack: tuple[str, ...]) -> Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise NotRegular(f"the rules expand to more than {MAX_NODES} parts")
        if isinstance(tree, NonTerminal):
            return self.rule(tree.name, stack)
        if isinstance(tree, Terminal):
            return ("term", self.terminal(tree.name, ()))
        if not isinstance(tree, Tree):
            raise NotRegular(f"unsupported grammar construct {tree!r}")
        kind, kids = tree.data, tree.children
        if kind == "expansions":
            return ("alt", [self.node(k, stack) for k in kids])
        if kind == "expansion":
            return ("seq", [self.node(k, stack) for k in kids])
        if kind in ("alias", "value"):
            return self.node(kids[0], stack)
        if kind == "maybe":
            return ("rep", self.node(kids[0], stack), 0, 1)
        if kind == "literal":
            return ("term", _literal(kids[0]))
        if kind == "expr":
            return ("rep", self.node(kids[0], stack), *_repeat(kids[1:]))
        raise NotRegular(f"unsupported grammar construct {kind!r}")

    def terminal(self, name: str, stack: tuple[str, ...]) -> str:
        """The regex of a terminal (its parts inlined: a terminal is one lexer unit)."""
        if name in stack or name not in self.terminals:
            raise NotRegular(f"terminal {name!r} is recursive or not defined")
        return _regex(self.terminal_node(self.terminals[name], (*stack, name)))

    def terminal_node(self, tree: object, stack: tuple[str, ...]) -> Node:
        if isinstance(tree, Terminal):
            return ("term", self.terminal(tree.name, stack))
        if isinstance(tree, Tree) and tree.data == "literal":
            return ("term", _literal(tree.children[0]))
        if isinstance(tree, Tree) and tree.data in ("expansions", "expansion", "value",
                                                     "maybe", "expr"):
            kids = tree.children
            if tree.data == "expr":
                return ("rep", self.terminal_node(kids[0], stack), *_repeat(kids[1:]))
            parts = [self.terminal_node(k, stack) for k in kids]
            if tree.data == "maybe":
                return ("rep", parts[0], 0, 1)
            return ("alt" if tree.data == "expansions" else "seq", parts)
        raise NotRegular(f"unsupported terminal construct {tree!r}")


def _literal(token: Token) -> str:
    pattern = _literal_to_pattern(token)
    if pattern.flags:
        raise NotRegular(f"the literal {token} has flags ({''.join(sorted(pattern.flags))})")
    if pattern.type == "str":
        return "".join("\\" + c if c in _META else _char(c) for c in pattern.value)
    if _unicode_dependent(pattern.value):
        raise NotRegular(f"the regex {token} uses a Unicode-dependent class (\\d \\w \\s or .)")
    return pattern.value


def _unicode_dependent(regex: str) -> bool:
    """Whether a regex uses \\d \\w \\s (or their negations) or an unescaped `.` outside
    a class."""
    escaped = in_class = False
    for c in regex:
        if escaped:
            if c in "dDwWsS":
                return True
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == "[":
            in_class = True
        elif c == "]":
            in_class = False
        elif c == "." and not in_class:
            return True
    return False


def _char(c: str) -> str:
    return c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}"


def _repeat(args: list[object]) -> tuple[int, int | None]:
    op = str(args[0])
    if op == "?":
        return 0, 1
    if op == "*":
        return 0, None
    if op == "+":
        return 1, None
    if op == "~" and len(args) in (2, 3):
        low = int(str(args[1]))
        return low, int(str(args[-1]))
    raise NotRegular(f"unsupported repetition {op!r}")


def _regex(node: Node) -> str:
    kind = node[0]
    if kind == "term":
        return node[1]
    if kind == "seq":
        return "".join(f"(?:{_regex(p)})" for p in node[1])
    if kind == "alt":
        return "|".join(f"(?:{_regex(p)})" for p in node[1]) if node[1] else "(?!)"
    _, inner, low, high = node
    count = f"{{{low},}}" if high is None else f"{{{low},{high}}}"
    return f"(?:{_regex(inner)}){count}"


# --- the lexing conditions -------------------------------------------------------------------

def _first(node: Node) -> set[str]:
    kind = node[0]
    if kind == "term":
        return {node[1]}
    if kind == "alt":
        return set().union(*(_first(p) for p in node[1]))
    if kind == "rep":
        return _first(node[1])
    found: set[str] = set()
    for part in node[1]:
        found |= _first(part)
        if not _nullable(part):
            break
    return found


def _nullable(node: Node) -> bool:
    kind = node[0]
    if kind == "term":
        return False  # terminals match nonempty texts (checked)
    if kind == "alt":
        return any(_nullable(p) for p in node[1])
    if kind == "rep":
        return node[2] == 0 or _nullable(node[1])
    return all(_nullable(p) for p in node[1])


def _follow(node: Node, after: set[str], out: dict[str, set[str]]) -> None:
    """out[terminal] |= the terminals that may come right after it."""
    kind = node[0]
    if kind == "term":
        out.setdefault(node[1], set()).update(after)
    elif kind == "alt":
        for part in node[1]:
            _follow(part, after, out)
    elif kind == "rep":
        again = node[3] is None or node[3] > 1
        _follow(node[1], after | _first(node[1]) if again else after, out)
    else:
        for part in reversed(node[1]):
            _follow(part, after, out)
            after = _first(part) | (after if _nullable(part) else set())


def _fsm(regex: str) -> FSM:
    try:
        return interegular.parse_pattern(regex).to_fsm()
    except Exception as exc:  # noqa: BLE001 - interegular's own parse errors
        raise NotRegular(f"cannot read the terminal /{regex}/ as an automaton: {exc}") from None


def live_states(fsm: FSM) -> set:
    """The states of `fsm` from which some final state can be reached."""
    live, changed = set(fsm.finals), True
    while changed:
        changed = False
        for state, moves in fsm.map.items():
            if state not in live and any(target in live for target in moves.values()):
                live.add(state)
                changed = True
    return live


def _prefixes(fsm: FSM) -> FSM:
    """The automaton of every prefix of a text of `fsm`."""
    return FSM(alphabet=fsm.alphabet, states=fsm.states, initial=fsm.initial,
               finals=live_states(fsm), map=fsm.map)


def _first_chars(fsm: FSM) -> set[object]:
    """The characters a text of `fsm` can start with (`anything_else` among them: any
    character the automaton does not name)."""
    chars: set[object] = set()
    for symbol, target in fsm.map.get(fsm.initial, {}).items():
        if fsm.islive(target):
            chars.update(fsm.alphabet.by_transition[symbol])
    return chars


def _may_share(one: set[object], other: set[object]) -> bool:
    """Whether texts starting with a character of `one` and of `other` can start alike."""
    return any(not isinstance(c, str) for c in (*one, *other)) or bool(one & other)


def _check_lexing(tree: Node) -> None:
    follows: dict[str, set[str]] = {}
    _follow(tree, set(), follows)
    terminals = sorted(follows)
    if len(terminals) > MAX_TERMINALS:
        raise NotRegular(f"it has more than {MAX_TERMINALS} terminals to check")
    fsms = {t: _fsm(t) for t in terminals}
    for t, fsm in fsms.items():
        if len(fsm.states) > MAX_TERMINAL_STATES:
            raise NotRegular(f"the terminal /{t[:40]}/ has more than {MAX_TERMINAL_STATES} "
                             "automaton states to check")
    empty = _fsm("")
    for t in terminals:
        if fsms[t].accepts(""):
            raise NotRegular(f"the terminal /{t}/ matches the empty text")
    same = {}  # terminal -> the first terminal of the same language (one lexer unit)
    for t in terminals:
        same[t] = next((u for u in terminals[:terminals.index(t)]
                        if same[u] == u and fsms[u].equivalent(fsms[t])), t)
    nonempty = _fsm("(?:[^a]|a)+")  # any nonempty text (`anything_else` in its alphabet)
    prefixes = {t: _prefixes(f) for t, f in fsms.items()}
    starts = {t: _first_chars(f) for t, f in fsms.items()}
    nonempty_prefixes = {t: p.difference(empty) for t, p in prefixes.items()}
    for a in terminals:
        longer = {b: fsms[a].concatenate(nonempty_prefixes[b]) for b in follows[a]}
        for c in terminals:
            if not _may_share(starts[a], starts[c]):  # no text of c starts like one of a
                continue
            for b, joined in longer.items():
                if not (prefixes[c] & joined).empty():
                    raise NotRegular(f"/{c}/ can run on past /{a}/ into /{b}/, so a lexer "
                                     "would cut the text elsewhere than the rules")
            if same[c] == same[a]:
                continue
            if not (fsms[a] & fsms[c]).empty():
                raise NotRegular(f"/{a}/ and /{c}/ match a text in common, so a lexer may "
                                 "take one where the rules want the other")
            if not (fsms[a] & fsms[c].concatenate(nonempty)).empty():
                raise NotRegular(f"/{c}/ matches a proper prefix of a text of /{a}/, so a "
                                 "lexer may cut the text earlier than the rules")


def grammar_regex(text: str) -> str:
    """The regex of a regular Lark grammar (see the module docstring); NotRegular says why a
    grammar is not taken (it stays on the grammar path, which decodes it exactly)."""
    builder = GrammarBuilder()
    try:
        builder.load_grammar(text, "<grammar>")
        grammar = builder.build()
    except Exception as exc:  # noqa: BLE001 - Lark's errors; llguidance's dialect goes on
        raise NotRegular(f"Lark does not read it: {str(exc).splitlines()[0]}") from None
    if grammar.ignore:
        raise NotRegular("it ignores text between terminals (%ignore)")
    rules = {}
    for name, params, tree, _options in grammar.rule_defs:
        if params:
            raise NotRegular(f"rule {name!r} is a template")
        rules[str(name)] = tree
    terminals = {str(name): tree for name, (tree, _priority) in grammar.term_defs}
    builder_ = _Builder(rules, terminals)
    tree = builder_.rule("start", ())
    regex = _regex(tree)
    if len(regex) > MAX_REGEX_CHARS:
        raise NotRegular(f"its regex is longer than {MAX_REGEX_CHARS} characters")
    _check_lexing(tree)
    return regex

