"""`grammar` (Lark text) as an extra body field of the OpenAI routes and a sampling param of
/generate, on a real `sglc serve`: outputs parse with Lark; a bad grammar is a 400 naming its
line and column; a grammar with another constraint is a 400."""

from __future__ import annotations

import pytest
from lark import Lark

GRAMMAR = 'start: "SELECT " NAME " FROM " NAME ";"\nNAME: /[a-z]{1,8}/\n'


@pytest.fixture(scope="module")
def client(server):
    return server.client()


@pytest.fixture(scope="module")
def http(server):
    with server.http() as c:
        yield c


def test_completions_and_chat_take_a_grammar(client):
    parser = Lark(GRAMMAR, parser="lalr")
    r = client.completions.create(model="default", prompt="SQL: ", max_tokens=32,
                                  temperature=0, extra_body={"grammar": GRAMMAR})
    assert r.choices[0].finish_reason == "stop"
    parser.parse(r.choices[0].text)
    chat = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "Write a query."}],
        max_tokens=32, temperature=0.7, seed=1, extra_body={"grammar": GRAMMAR})
    parser.parse(chat.choices[0].message.content)


def test_generate_takes_a_grammar_sampling_param(http):
    body = http.post("/generate", json={"text": "SQL: ", "sampling_params": {
        "max_new_tokens": 32, "temperature": 0, "grammar": GRAMMAR}}).json()
    assert body["meta_info"]["is_valid"] is True
    Lark(GRAMMAR, parser="lalr").parse(body["text"])


@pytest.mark.parametrize(("extra", "message"), [
    ({"grammar": "start: nope"}, "grammar line 1, column 8"),
    ({"grammar": GRAMMAR, "regex": "a"}, "at most one of"),
])
def test_bad_grammar_requests_are_400s(http, extra, message):
    r = http.post("/v1/completions", json={"model": "default", "prompt": "x",
                                           "max_tokens": 4, **extra})
    assert r.status_code == 400 and message in r.text, r.text
