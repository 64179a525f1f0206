"""Editor support: the formatter behind `sglc fmt` and the language server behind `sglc lsp`.

layout_tokens.py  the formatter's token stream (every token, with its rule) and comments
formatter.py      format_source: the layout rules, checked against a re-parse
symbols.py        Symbol, Occurrence, ModuleIndex, ProgramIndex: what each written name means
index.py          build_index: the symbols of a checked program, fn bodies scoped as the checker
analysis.py       analyze: one document checked as `sglc check` does, with its index
describe.py       signatures and hover text
complete.py       completion and signature help (from the text before the cursor)
actions.py        the "add missing import" quick fix, semantic tokens
server.py         the pygls server: handlers, debounced diagnostics, guards

Only the formatter is imported here: pygls loads with sglc.editor.server alone.
"""

from sglc.editor.formatter import FormatError, format_source

__all__ = ["FormatError", "format_source"]
