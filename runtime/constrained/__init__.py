"""Constrained decoding in the engine: token automata over a vocabulary, masks, jump-forward.

The constraint language itself (the regex dialect, canonical regexes, JSON schemas) is the
leaf package `sglc.constraints`; this package turns its regexes into token automata.

Modules:
    vocabulary    the tokenizer's vocabulary as outlines-core sees it
    index_cache   token automata (outlines-core `Index`) cached by (regex, vocabulary hash)
    matcher       per-request automaton state: allowed-token masks, advancing, rollback
    jump_forward  forced paths through the automaton, appended without a decode step
    stage         what the engine loop calls: index builds, batched masks, jump-forward
"""
