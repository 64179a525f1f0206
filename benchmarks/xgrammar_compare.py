"""xgrammar next to llguidance in grammar_decode.py (xgrammar is not a project dependency).

xgrammar takes EBNF, not Lark, so `lark_to_ebnf` translates a grammar through Lark's own
loader: Lark expands ``[x]``, ``x*`` and ``x+`` into plain rules, and each rule becomes an
EBNF rule of its alternatives; each terminal becomes a string literal or its regex rewritten
in EBNF (character classes, groups, ``? * + {m,n}`` and escaped literals: the subset the
benchmark's grammars use; anything else is refused). The benchmark grammars' terminals never
touch (tests/runtime/grammars.py), so xgrammar's character-level reading of them is the same
language as Lark's lexer-based one; the walks' finished texts are parsed by Lark to show it.

`XgrammarMatcher` gives an xgrammar matcher the two calls the mask-time walk makes
(`fill_bitmask`, `advance`). The xgrammar tokenizer is built from the same token bytes as
ours (``VocabType.RAW``), so both libraries see identical vocabularies and stop ids.
"""

from __future__ import annotations

import importlib.util
import json
import time
from typing import Any

import torch
from lark import Lark
from lark.lexer import PatternStr

from sglc.runtime.constrained.vocabulary import TokenVocabulary

_ESCAPES = {"d": "[0-9]", "w": "[a-zA-Z0-9_]", "s": "[ \\t\\n\\r]"}


def available() -> bool:
    return importlib.util.find_spec("xgrammar") is not None


def regex_to_ebnf(regex: str) -> str:
    """A regex of character classes, groups, alternation, quantifiers and literal characters
    as an EBNF expression; ValueError for anything else (anchors, ``.``, backreferences)."""
    out: list[str] = []
    i = 0
    while i < len(regex):
        char = regex[i]
        if char == "[":
            end = i + 1
            while regex[end] != "]" or end == i + 1:
                end += 2 if regex[end] == "\\" else 1
            out.append(regex[i : end + 1])
            i = end + 1
            continue
        if char == "(":
            out.append("(")
            i += 3 if regex.startswith("(?:", i) else 1
            continue
        if char == "{":
            end = regex.index("}", i)
            out[-1] += regex[i : end + 1]
            i = end + 1
            continue
        if char in "?*+":
            out[-1] += char
        elif char in ")|":
            out.append(char)
        elif char == "\\":
            i += 1
            escaped = regex[i]
            out.append(_ESCAPES.get(escaped) or json.dumps(escaped))
        elif char in ".^$":
            raise ValueError(f"regex {regex!r}: {char!r} has no translation here")
        else:
            out.append(json.dumps(char))
        i += 1
    return " ".join(out)


def lark_to_ebnf(grammar: str) -> str:
    """The Lark grammar `grammar` as xgrammar EBNF (root = Lark's ``start``)."""
    lark = Lark(grammar, parser="lalr")
    lines = ["root ::= r_start"]
    alternatives: dict[str, list[str]] = {}
    for rule in lark.rules:
        symbols = [("t_" if s.is_term else "r_") + s.name for s in rule.expansion]
        alternatives.setdefault(rule.origin.name, []).append(" ".join(symbols) or '""')
    lines += [f"r_{name} ::= {' | '.join(alts)}" for name, alts in alternatives.items()]
    for terminal in lark.terminals:
        pattern = terminal.pattern
        if pattern.flags:
            raise ValueError(f"terminal {terminal.name}: regex flags are not translated")
        body = (json.dumps(pattern.value) if isinstance(pattern, PatternStr)
                else regex_to_ebnf(pattern.value))
        lines.append(f"t_{terminal.name} ::= {body}")
    return "\n".join(lines)


def tokenizer_info(vocab: TokenVocabulary) -> Any:
    """xgrammar's tokenizer over our token bytes (special and missing ids as empty)."""
    import xgrammar as xgr

    return xgr.TokenizerInfo([b or b"" for b in vocab.token_bytes], xgr.VocabType.RAW,
                             vocab_size=vocab.width, stop_token_ids=list(vocab.stop_ids))


class XgrammarMatcher:
    """An xgrammar matcher behind the mask-time walk's `fill_bitmask` / `advance`."""

    def __init__(self, compiled: Any) -> None:
        import xgrammar as xgr

        self._matcher = xgr.GrammarMatcher(compiled)

    def fill_bitmask(self, row: torch.Tensor) -> None:
        self._matcher.fill_next_token_bitmask(row.view(1, -1))

    def advance(self, token_id: int) -> None:
        if not self._matcher.accept_token(token_id):
            raise ValueError(f"xgrammar refused token {token_id} it had allowed")


def compile_grammar(compiler: Any, grammar: str | None, regex: str | None) -> tuple[Any, float]:
    """(compiled grammar, seconds): the Lark grammar's EBNF translation, or the regex."""
    start = time.perf_counter()
    if regex is not None:
        compiled = compiler.compile_regex(regex)
    else:
        compiled = compiler.compile_grammar(lark_to_ebnf(grammar or ""))
    return compiled, time.perf_counter() - start


def new_compiler(vocab: TokenVocabulary, max_threads: int) -> tuple[Any, float]:
    """(an xgrammar GrammarCompiler for `vocab`, seconds to build its tokenizer)."""
    import xgrammar as xgr

    start = time.perf_counter()
    info = tokenizer_info(vocab)
    seconds = time.perf_counter() - start
    return xgr.GrammarCompiler(info, max_threads=max_threads, cache_enabled=False), seconds
