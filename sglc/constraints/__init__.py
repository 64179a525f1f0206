"""The constraint language: the supported regex dialect, one canonical regex per constraint
(types, choices, regex literals, JSON schemas) and `ConstraintError`. A leaf: the checker,
the IR passes and the engine import it; it imports nothing of sglc.

Modules:
    regex         the supported regex dialect, `ConstraintError`, and `index_regex` (the form
                  handed to outlines-core `Index`)
    canonical     the constraint compiler: one canonical regex per constraint
    schema        JSON schemas to canonical regexes: the supported subset, JSON-pointer errors
"""
