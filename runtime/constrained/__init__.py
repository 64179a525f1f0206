"""Constrained decoding in the engine: token automata over a vocabulary, masks, jump-forward.

The constraint language itself (the regex dialect, canonical regexes, JSON schemas) is the
leaf package `sglc.constraints`; this package turns its regexes into token automata, and its grammars into
llguidance matchers.

Modules:
    vocabulary    the tokenizer's vocabulary as outlines-core sees it
    index_cache   token automata (outlines-core `Index`) cached by (regex, vocabulary hash)
    base          BaseMatcher: the contract every request's matcher meets
    matcher       per-request automaton state: allowed-token masks, advancing, rollback
    grammar_cache llguidance grammars compiled per vocabulary, cached, built off the loop
    grammar_matcher  per-request llguidance state behind the same contract (grammars)
    jump_forward  forced paths through the automaton, appended without a decode step
    stage         what the engine loop calls: index builds, batched masks, jump-forward
"""
