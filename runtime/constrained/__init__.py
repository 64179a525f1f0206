"""Constrained decoding: constraints as regexes, token automata over a vocabulary, jump-forward.

Modules:
    canonical     the constraint compiler: one canonical regex per constraint (types, choices,
                  regex literals, schemas via `schema`)
    regex         the supported regex dialect, `ConstraintError`, and `index_regex` (the form
                  handed to outlines-core `Index`)
    schema        JSON schemas to canonical regexes: the supported subset, JSON-pointer errors
    vocabulary    the tokenizer's vocabulary as outlines-core sees it
    index_cache   token automata (outlines-core `Index`) cached by (regex, vocabulary hash)
    matcher       per-request automaton state: allowed-token masks, advancing, rollback
    jump_forward  forced paths through the automaton, appended without a decode step
    stage         what the engine loop calls: index builds, batched masks, jump-forward
"""
