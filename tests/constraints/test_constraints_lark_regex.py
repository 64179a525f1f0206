"""Regular Lark grammars on the regex path (`lark_regex.grammar_regex`, `route_grammar`):
which grammars are taken, why the others are not, and, for those taken, the regex and Lark's
own parser agree on sampled sentences and on near misses."""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

import interegular
import pytest

from sglc.constraints.grammar import GrammarError, route_grammar
from sglc.constraints.lark_regex import NotRegular, grammar_regex, live_states

sys.path.append(str(Path(__file__).parents[1] / "runtime"))
from grammars import GRAMMARS, REGULAR, parses  # noqa: E402

TAKEN = {
    "sql": GRAMMARS["sql"],  # no rule recurses: regular, though written as rules
    **{name: text for name, (text, _) in REGULAR.items()},
    "choices": 'start: "yes" | "no" | "maybe"',
    "ranges": 'start: ITEM~2..3 ("," ITEM)?\nITEM: /[a-c]/ "-" /[0-9]/',
    "spaced": 'start: NAME " " NAME\nNAME: /[a-z]+/',
    "optional": 'start: [SIGN] DIGITS "." DIGITS\nSIGN: "+" | "-"\nDIGITS: /[0-9]+/',
    "one terminal, two spellings": 'start: PLUS NUM ("+" NUM)*\nPLUS: "+"\nNUM: /[0-9]/',
    "sql.lark": (Path(__file__).parents[2] / "examples" / "sql.lark").read_text(),
}

REFUSED = [
    (GRAMMARS["arithmetic"], "recursive"),
    (GRAMMARS["nested_lists"], "recursive"),
    ('start: NAME NAME\nNAME: /[a-z]+/', "run on past"),
    ('start: "select" NAME\nNAME: /[a-z]+/', "in common"),
    ('start: KW | NAME "x"\nKW: "ab"\nNAME: /[a-z]{2}/', "in common"),
    ('start: A B\nA: "a"\nB: "ab"', "proper prefix"),
    ('start: NUM\nNUM: /\\d+/', "Unicode"),
    ('start: WORD\nWORD: /[a-z]./', "Unicode"),
    ('start: "x"i', "flags"),
    ('start: X "b"\nX: /a*/', "empty text"),
    ('%ignore " "\nstart: "a" "b"', "%ignore"),
    ('start: "a" <[1]>', "Lark does not read it"),
]


@pytest.mark.parametrize("name", sorted(TAKEN))
def test_regular_grammars_take_the_regex_path(name):
    route = route_grammar(TAKEN[name])
    assert route.path == "regex" and route.grammar is None, route.refusal
    assert route.regex


@pytest.mark.parametrize("grammar, reason", REFUSED)
def test_other_grammars_stay_on_the_grammar_path_and_say_why(grammar, reason):
    with pytest.raises(NotRegular, match=re.escape(reason)):
        grammar_regex(grammar)
    if "<[" not in grammar:  # llguidance's own syntax: Lark cannot read it
        route = route_grammar(grammar)
        assert route.path == "grammar" and reason in route.refusal


def test_a_bad_grammar_is_still_a_grammar_error():
    with pytest.raises(GrammarError):
        route_grammar('start: "a" UNDEFINED')


def _sample(fsm, live: set, rng: random.Random) -> str:
    """A random text of `fsm` (a walk through live states, stopping at random)."""
    state, out = fsm.initial, []
    while True:
        moves = [(sym, dst) for sym, dst in fsm.map.get(state, {}).items() if dst in live]
        if state in fsm.finals and (not moves or rng.random() < 0.15 or len(out) > 60):
            return "".join(out)
        sym, state = rng.choice(moves)
        chars = [c for c in fsm.alphabet.by_transition[sym] if isinstance(c, str)]
        out.append(rng.choice(chars) if chars else "~")  # `anything_else`: a char none names



@pytest.mark.parametrize("name", sorted(TAKEN))
def test_the_regex_and_lark_agree_on_sentences_and_near_misses(name):
    grammar = TAKEN[name]
    regex = route_grammar(grammar).regex
    fsm = interegular.parse_pattern(regex).to_fsm()
    live = live_states(fsm)
    rng = random.Random(0)
    pool = sorted(set(re.sub(r"[\\/]", "", grammar)) - {"\n"}) + ["~"]
    for _ in range(60):
        text = _sample(fsm, live, rng)
        assert re.fullmatch(regex, text), text
        assert parses(grammar, text), f"Lark rejects {text!r}, which the regex accepts"
        for _ in range(4):  # near misses: one edit away
            i = rng.randrange(len(text) + 1)
            edit = rng.choice(["insert", "delete", "replace"])
            c = rng.choice(pool)
            miss = (text[:i] + c + text[i:] if edit == "insert" else
                    text[:i] + text[i + 1:] if edit == "delete" else text[:i] + c + text[i + 1:])
            assert bool(re.fullmatch(regex, miss)) == parses(grammar, miss), (text, miss)


def test_a_terminal_too_large_to_check_stays_on_the_grammar_path():
    with pytest.raises(NotRegular, match="automaton states"):
        grammar_regex('start: N ";"\nN: /[a-z]{1,3000}/')
