"""The text form of a small program, pinned."""

from __future__ import annotations

from sglc.ir import print_program

SOURCE = '''fn ask(q: str, n: int = 2) -> str:
    system "Be brief."
    user "Q: {q}"
    assistant:
        "A: " gen a: int(max_tokens=4)
    if a > n and a < 10:
        return "big"
    return "small"
'''

GOLDEN = '''; sglc IR v3, module t, entry -

fn t.ask(q: str, n: int = 2) -> str
entry:
    role_begin system
    append "Be brief."
    role_end system
    role_begin user
    append "Q: "
    append q
    role_end user
    role_begin assistant
    append "A: "
    a = gen int (max_tokens=4)
    role_end assistant
    %1 = a > n
    branch %1, bool_rhs5, bool_end4
bool_rhs5:
    %1 = a < 10
    jump bool_end4
bool_end4:
    branch %1, then1, endif3
then1:
    return "big"
endif3:
    return "small"
'''


def test_printer_output_is_pinned(lower) -> None:
    assert print_program(lower(SOURCE)) == GOLDEN


def test_printer_shows_spans_on_request(lower) -> None:
    text = print_program(lower(SOURCE), spans=True)
    assert '    append "Be brief."    ; t.sgl:2:12' in text
