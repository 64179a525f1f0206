"""The same SGL programs on the in-process engine and on a real `sglc serve` (native routes,
and /v1/completions only): identical greedy (and seeded) outputs, streamed deltas, traces,
and prefix sharing that pays off on the server."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest

import sglc
from backends.support import API_KEY
from sglc.runtime.backends.remote import RemoteClient

ROOT = Path(__file__).parents[2]
EXAMPLES = ["agent", "chat", "extract", "few_shot", "tree_of_thought"]
FEATURES = ROOT / "tests" / "backends" / "programs" / "features.sgl"
CALLS = [
    ("free", {"topic": "the sea"}),
    ("typed", {}),
    ("person", {"text": "Name: Clara. Age: 36. City: Rome. Job: pilot."}),
    ("pick", {"question": "Is Rome the capital of Italy?"}),
    ("branches", {}),
    ("many", {"questions": ["Is Oslo the capital of Egypt?", "Is Madrid the capital of Spain?"]}),
]


def printed(program: sglc.Program, runtime: sglc.Runtime) -> str:
    out: list[str] = []
    assert program.run(runtime=runtime, out=out.append) is None
    return "".join(out)


@pytest.mark.parametrize("name", EXAMPLES)
def test_examples_print_the_same_locally_and_remotely(name, local, remote):
    program = sglc.load(ROOT / "examples" / f"{name}.sgl")
    expected = printed(program, local)
    assert expected and printed(program, remote) == expected


@pytest.mark.parametrize(("fn", "args"), CALLS, ids=[c[0] for c in CALLS])
def test_every_kind_of_model_call_gives_the_same_value(fn, args, local, remote):
    program = sglc.load(FEATURES)
    local_trace, remote_trace = sglc.Trace(), sglc.Trace()
    expected = program.run(fn, runtime=local, trace=local_trace, **args)
    assert program.run(fn, runtime=remote, trace=remote_trace, **args) == expected
    assert _calls(remote_trace) == _calls(local_trace)


def _calls(trace: sglc.Trace) -> list[tuple]:
    """Each model call's kind, caller, name and result; records are kept in the order calls
    finish, which concurrent branches do in any order, so compare them sorted."""
    return sorted((r["kind"], r.get("fn", ""), r.get("name") or "", str(r.get("output")),
                   str(r.get("chosen"))) for r in trace.records)


def test_the_endpoint_speaks_the_api_asked_for(remote):
    program = sglc.load(FEATURES)
    program.run("typed", runtime=remote)
    program.run("pick", runtime=remote, question="Is it?")
    stats = remote.client.stats()
    assert isinstance(remote.client, RemoteClient) and stats["model"] == "default"
    assert stats["api"] == remote.remote_options.api
    assert stats["requests"] > 0 and stats["retries"] == 0
    if stats["api"] == "openai":  # sglc serve has every feature the wire probes for
        assert stats["features"] == {"token_prompts": True, "token_outputs": True,
                                     "regex_field": "regex", "echo_logprobs": True}


def test_the_server_serves_its_tokenizer_files_behind_its_key(endpoint):
    with endpoint.http(api_key=None) as anonymous:
        assert anonymous.get("/tokenizer").status_code == 401
    with endpoint.http(api_key=API_KEY) as http:
        body = http.get("/tokenizer").json()
    assert body["model"] == "default" and "tokenizer.json" in body["files"]
    assert json.loads(base64.b64decode(body["files"]["tokenizer.json"]))["model"]["vocab"]


def test_the_remote_tokenizer_is_the_engines(local, remote):
    mine, theirs = local.client.tokenizer, remote.client.tokenizer
    text = "Hello, wörld! 12*7 = 84 🙂"
    assert theirs.encode(text) == mine.encode(text)
    assert theirs.chat_template == mine.chat_template
    messages = [{"role": "user", "content": "hi"}]
    assert theirs.apply_chat_template(messages, tokenize=False) == \
        mine.apply_chat_template(messages, tokenize=False)


class Deltas(sglc.ProgramEvents):
    def __init__(self) -> None:
        self.text: dict[str, str] = {}
        self.values: dict[str, str] = {}

    def on_delta(self, fn: str, name: str, delta: str) -> None:
        self.text[name] = self.text.get(name, "") + delta

    def on_value(self, fn: str, name: str, text: str) -> None:
        self.values[name] = text


def test_gens_stream_their_text_as_it_is_decoded(local, remote):
    program = sglc.load(FEATURES)
    here, there = Deltas(), Deltas()
    program.run("free", runtime=local, events=here, topic="the moon")
    value = program.run("free", runtime=remote, events=there, topic="the moon")
    assert there.values == here.values == {"reply": value}
    assert there.text["reply"].startswith(value) and there.text == here.text


def test_a_fan_out_prefetches_its_shared_prefix_into_the_servers_cache(local, remote):
    # a prefix no other test sent, so nothing of it is cached before the prefetch
    tag = uuid.uuid4().hex[:12]
    source = f'''
fn fan() -> list[str]:
    system "You are a careful assistant. Session {tag}. Answer every question briefly."
    user "Question: What is 6*7? Think about it first."
    fork 4 as b:
        assistant: "Thought: " gen step(max_tokens=4)
    return b.step
'''
    program = sglc.compile(source, "fan.sgl")
    traces = {}
    for where, runtime in (("local", local), ("remote", remote)):
        traces[where] = sglc.Trace()
        program.fan(runtime=runtime, trace=traces[where])
    records = traces["remote"].records
    assert records[0]["kind"] == "prefetch"
    gens = [r for r in records if r["kind"] == "gen"]
    # every branch, the first too, found the whole shared prompt in the server's radix
    # cache (the cached tokens its `usage` reported), as the local engine's branches did
    assert len(gens) == 4 and all(g["cached_tokens"] >= g["prompt_tokens"] - 1 for g in gens)
    local_gens = [r for r in traces["local"].records if r["kind"] == "gen"]
    assert [g["cached_tokens"] for g in gens] == [g["cached_tokens"] for g in local_gens]
