"""Five context-free grammars in the common subset of Lark and llguidance's Lark dialect
(terminals never touch, so a greedy lexer and Lark's agree), for the grammar-path tests and
benchmarks/grammar_decode.py. Ground truth is Lark's own parser on the same text."""

from __future__ import annotations

from functools import cache

from lark import Lark

SQL = r"""
start: "SELECT " columns " FROM " NAME [where] [order] ";"
columns: "*" | NAME (", " NAME)*
where: " WHERE " comparison (" AND " comparison)*
comparison: NAME OP value
value: NUMBER | STRING
order: " ORDER BY " NAME [DIRECTION]
DIRECTION: " ASC" | " DESC"
OP: "=" | "<" | ">"
NAME: /[a-z][a-z_]{0,7}/
NUMBER: /[0-9]{1,4}/
STRING: /'[a-z ]{0,8}'/
"""

ARITHMETIC = r"""
start: expr
expr: term (ADD term)*
term: factor (MUL factor)*
factor: NUMBER | "(" expr ")" | "-" factor
ADD: "+" | "-"
MUL: "*" | "/"
NUMBER: /[0-9]{1,3}(\.[0-9]{1,2})?/
"""

JSON = r"""
start: value
value: object | array | STRING | NUMBER | "true" | "false" | "null"
object: "{" [pair ("," pair)*] "}"
pair: STRING ":" value
array: "[" [value ("," value)*] "]"
STRING: /"[a-z0-9 ]{0,8}"/
NUMBER: /-?[0-9]{1,4}/
"""

NESTED_LISTS = r"""
start: list
list: "[" [item (", " item)*] "]"
item: list | WORD
WORD: /[a-z]{1,4}/
"""

TOY_LANGUAGE = r"""
start: stmt+
stmt: "let " NAME " = " expr ";\n"
    | "print " expr ";\n"
    | "if " expr " {\n" stmt* "}\n"
expr: atom (OP atom)*
atom: NAME | NUMBER | "(" expr ")"
OP: " + " | " - " | " * " | " < "
NAME: /[a-z]{1,4}/
NUMBER: /[0-9]{1,3}/
"""

GRAMMARS = {"sql": SQL, "arithmetic": ARITHMETIC, "json": JSON, "nested_lists": NESTED_LISTS,
            "toy_language": TOY_LANGUAGE}
"""name -> Lark text."""

REGULAR = {"arithmetic_flat": (r"""
start: NUMBER (OP NUMBER)*
OP: "+" | "-" | "*" | "/"
NUMBER: /[0-9]{1,3}/
""", r"[0-9]{1,3}([-+*/][0-9]{1,3})*"),
           "sql_select": (r"""
start: "SELECT " NAME (", " NAME)* " FROM " NAME ";"
NAME: /[a-z][a-z_]{0,7}/
""", r"SELECT [a-z][a-z_]{0,7}(, [a-z][a-z_]{0,7})* FROM [a-z][a-z_]{0,7};")}
"""Regular languages written both ways: name -> (Lark text, the same language as a regex)."""


@cache
def lark_parser(grammar: str) -> Lark:
    """Lark's own parser for a grammar text (LALR: the grammars above are LALR(1))."""
    return Lark(grammar, parser="lalr")


def parses(grammar: str, text: str) -> bool:
    """Whether Lark's parser accepts `text` as a sentence of `grammar`."""
    try:
        lark_parser(grammar).parse(text)
    except Exception:  # noqa: BLE001 - any Lark error means "not a sentence"
        return False
    return True
