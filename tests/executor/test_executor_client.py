"""The executor's seams: the ModelClient protocol (a real engine through LocalEngine, and a
pure-Python client that shows the executor needs nothing else), and ProgramEvents."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest
from model_fixtures import build_tokenizer, make_model_dir

import sglc  # noqa: E402
import sglc.program as api  # noqa: E402
from sglc.runtime.backends import LocalEngine, Runtime  # noqa: E402
from sglc.runtime.core import (  # noqa: E402
    FinishReason,
    InvalidRequest,
    Output,
    SamplingParams,
    StreamDelta,
    Usage,
)
from sglc.runtime.executor import (  # noqa: E402
    GenError,
    ModelClient,
    OptionScore,
    ProgramEvents,
    Tokenizer,
)

PROGRAM = '''
fn f() -> list[str]:
    user "Pick a color."
    assistant:
        "Color: " select c in ["red", "green", "blue"]
        " because" gen why(max_tokens=5)
    fork 3 as b:
        assistant: "Idea: " gen idea(max_tokens=4)
    return [c, why] + b.idea
'''


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    path = tmp_path_factory.mktemp("client-model")
    make_model_dir(path, "llama")
    with sglc.Engine(path, max_total_tokens=4096) as engine:
        yield engine


# -- a real engine through the protocol ---------------------------------------------------------
def test_local_engine_implements_the_protocol(engine):
    client = LocalEngine(engine)
    assert isinstance(client, ModelClient) and isinstance(client.tokenizer, Tokenizer)
    assert Runtime(engine=engine).client.engine is engine


def test_submit_through_the_protocol_matches_generate(engine):
    client = LocalEngine(engine)
    tok = client.tokenizer
    prompts = [tok.encode("The quick brown"), tok.encode("Once upon a")]
    params = [SamplingParams(max_new_tokens=6, temperature=0),
              SamplingParams(max_new_tokens=4, temperature=0)]
    outputs: dict[str, Output] = {}
    pieces: dict[str, list[str]] = {"a": [], "b": []}
    done = threading.Event()

    def on_output(out: Output) -> None:
        outputs[out.rid] = out
        if len(outputs) == 2:
            done.set()

    def on_delta(delta: StreamDelta) -> None:
        pieces[delta.rid].append(delta.text)

    client.submit(prompts, params, rids=["a", "b"], on_output=on_output, on_delta=on_delta)
    assert done.wait(120)
    expected = engine.generate(prompts, params)
    assert [outputs["a"].text, outputs["b"].text] == [o.text for o in expected]
    assert "".join(pieces["a"]) == outputs["a"].text


def test_score_through_the_protocol_matches_the_engine(engine):
    client = LocalEngine(engine)
    ids = client.tokenizer.encode("The quick brown fox jumps over the")
    scores = asyncio.run(client.score(ids, [" lazy dog", " moon"]))
    expected = engine.score(ids, [" lazy dog", " moon"])
    assert all(isinstance(s, OptionScore) for s in scores)
    assert [s.logprob for s in scores] == pytest.approx([s.logprob for s in expected])


def test_a_program_runs_the_same_on_a_given_client(engine):
    prog = api.compile(PROGRAM, "client.sgl")
    on_engine = prog.f(runtime=Runtime(engine=engine))
    on_client = prog.f(runtime=Runtime(client=LocalEngine(engine)))
    assert on_client == on_engine  # greedy: the same values


def test_runtime_options_are_one_of_engine_client_or_model(engine):
    with pytest.raises(ValueError, match="one of"):
        Runtime(engine=engine, client=LocalEngine(engine))
    with pytest.raises(ValueError, match="one of"):
        Runtime(model_path="x", client=LocalEngine(engine))
    with pytest.raises(ValueError, match="not an in-process engine"):
        _ = Runtime(client=LocalEngine(engine)).engine


# -- a model that is not an engine: the executor needs only the protocol ----------------------
@dataclass(frozen=True)
class FakeScore:
    logprob: float
    num_tokens: int

    @property
    def normalized(self) -> float:
        return self.logprob / self.num_tokens


class EchoClient:
    """Answers every gen with "ok", streamed in two pieces; scores an option by the length of
    its text (the longest wins); records the size of each wave it is sent."""

    def __init__(self) -> None:
        self.tokenizer = build_tokenizer()
        self.waves: list[int] = []
        self.prebuilt: list[str] = []

    def submit(self, prompts: Sequence[list[int]], params: Sequence[SamplingParams], *,
               rids: Sequence[str], on_output: Callable[[Output], None],
               on_delta: Callable[[StreamDelta], None] | None = None) -> None:
        self.waves.append(len(prompts))
        for prompt, rid, p in zip(prompts, rids, params, strict=True):
            text = "ok" if p.max_new_tokens else ""
            if on_delta is not None and text:
                on_delta(StreamDelta(rid, 0, "o", [], None))
                on_delta(StreamDelta(rid, 0, "k", [], FinishReason.LENGTH))
            ids = self.tokenizer.encode(text, add_special_tokens=False)
            usage = Usage(len(prompt), 0, len(ids))
            on_output(Output(rid, 0, text, ids, FinishReason.LENGTH, usage))

    async def score(self, prompt_ids: list[int],
                    options: Sequence[str | list[int]]) -> list[OptionScore]:
        texts = [o if isinstance(o, str) else self.tokenizer.decode(o) for o in options]
        return [FakeScore(float(len(t)), 1) for t in texts]

    def prebuild(self, regexes: Sequence[str]) -> None:
        self.prebuilt.extend(regexes)


class Recorder(ProgramEvents):
    def __init__(self) -> None:
        self.deltas: list[tuple[str, str, str]] = []
        self.values: list[tuple[str, str, str]] = []

    def on_delta(self, fn: str, name: str, text: str) -> None:
        self.deltas.append((fn, name, text))

    def on_value(self, fn: str, name: str, text: str) -> None:
        self.values.append((fn, name, text))


def test_a_pure_python_client_runs_a_program_in_waves():
    client = EchoClient()
    assert isinstance(client, ModelClient)
    prog = api.compile(PROGRAM + '\nfn g() -> int:\n    "N: " gen n: int(max_tokens=3)\n'
                       "    return n\n", "echo.sgl")
    assert prog.f(runtime=Runtime(client=client)) == ["green", "ok", "ok", "ok", "ok"]
    # one wave for `why`, one prefetch of the shared prompt, ONE wave for the three branches
    assert client.waves == [1, 1, 3]
    assert client.prebuilt  # the int gen's regex was announced before the program ran


def test_events_hear_each_gen_as_it_decodes_and_each_value():
    client = EchoClient()
    events = Recorder()
    prog = api.compile(PROGRAM, "echo.sgl")
    prog.f(runtime=Runtime(client=client), events=events)
    assert events.values[:2] == [("f", "c", "green"), ("f", "why", "ok")]
    branches = sorted(events.values[2:])
    assert branches == [(f"f (fork branch {k} of 3)", "idea", "ok") for k in (1, 2, 3)]
    assert [d for d in events.deltas if d[1] == "why"] == [("f", "why", "o"), ("f", "why", "k")]
    assert len(events.deltas) == 2 * 4  # every gen streamed; selects are not decoded


def test_without_events_nothing_is_streamed():
    client = EchoClient()
    calls: list[object] = []
    submit = client.submit

    def spy(*args, on_delta=None, **kwargs):
        calls.append(on_delta)
        return submit(*args, on_delta=on_delta, **kwargs)

    client.submit = spy  # type: ignore[method-assign]
    api.compile(PROGRAM, "echo.sgl").f(runtime=Runtime(client=client))
    assert calls and all(c is None for c in calls)


class PickyClient(EchoClient):
    """Refuses a whole submit (as `sglc.Engine.submit` does) when any request asks for more
    than 10 tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[list[int]] = []  # max_new_tokens of each submit, refused or not

    def submit(self, prompts, params, **kwargs) -> None:  # type: ignore[override]
        self.asked.append([p.max_new_tokens for p in params])
        too_long = [p.max_new_tokens for p in params if p.max_new_tokens > 10]
        if too_long:
            raise InvalidRequest(f"max_new_tokens must be <= 10, got {too_long[0]}")
        super().submit(prompts, params, **kwargs)


def test_a_request_the_client_refuses_fails_alone_not_its_wave():
    client = PickyClient()
    prog = api.compile(
        'fn one(k: int) -> str:\n    "Q: "\n    if k == 0:\n        gen good(max_tokens=3)\n'
        '        return good\n    gen bad(max_tokens=50)\n    return bad\n\n'
        "fn main() -> list[str]:\n    let xs = parallel for k in [0, 1]:\n        one(k)\n"
        "    return xs\n", "picky.sgl")
    with pytest.raises(GenError) as info:
        prog.main(runtime=Runtime(client=client))
    assert "gen 'bad'" in str(info.value) and "picky.sgl:6:" in str(info.value)
    # the wave of both was refused; then each went alone and only the long one failed
    assert [3, 50] in client.asked and [3] in client.asked and [50] in client.asked
