"""What goes wrong between a program and its endpoint ends as a located SGL error (or one
clear EngineError when connecting), never a traceback: a 400, a server that went away, a
timeout, refusals past the retry limit; 503 / 429 answers are retried with backoff, and no
more requests are on the wire than allowed. A `Proxy` in front of a real `sglc serve` plays
the misbehaving server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from server.support import Server

import sglc
from backends.support import API_KEY, Proxy
from sglc.runtime.backends import RemoteOptions
from sglc.runtime.core import EngineError, InvalidRequest
from sglc.runtime.executor import GenError, ModelClient

FEATURES = Path(__file__).parent / "programs" / "features.sgl"
TOO_LONG = '''
fn main() -> str:
    user "Hi"
    assistant: gen reply(max_tokens=600)
    return reply
'''
FAST_RETRIES = {"backoff_s": 0.01, "max_retries": 2}
# no constrained gen: no background probe of an OpenAI server's regex field shares the
# proxy's refusals with the gen, so the gen alone is refused
FREE = '''
fn main() -> str:
    user "Tell me about tea."
    assistant: gen reply(max_tokens=24, stop=".")
    return reply
'''


@pytest.fixture()
def proxy(endpoint: Server) -> Iterator[Proxy]:
    with Proxy(endpoint.base_url) as p:
        yield p


@pytest.fixture(params=["sglc", "openai"])
def api(request: pytest.FixtureRequest) -> str:
    return request.param


def on(url: str, api: str, **options: object) -> sglc.Runtime:
    return sglc.Runtime(endpoint=url, api_key=API_KEY, api=api, **options)


def connect(runtime: sglc.Runtime) -> ModelClient:
    return runtime.client


def test_a_400_is_a_located_error_with_the_servers_message(endpoint, api):
    program = sglc.compile(TOO_LONG, "long.sgl")
    with on(endpoint.base_url, api) as runtime:
        with pytest.raises(GenError) as info:
            program.run(runtime=runtime)
        text = str(info.value)
        assert text.startswith("long.sgl:4:16: generation error: gen 'reply': ")
        assert "answered 400: " in text and "<= 512 on this server" in text
        assert "^~~" in text and "Traceback" not in text
        # the failure was this request's alone: the runtime goes on
        assert isinstance(sglc.load(FEATURES).run("free", runtime=runtime, topic="tea"), str)


@pytest.mark.parametrize("status", [503, 429])
def test_refusals_are_retried_with_backoff(proxy, local, api, status):
    program = sglc.load(FEATURES)
    expected = program.run("pick", runtime=local, question="Is Rome the capital of Italy?")
    with on(proxy.url, api, **FAST_RETRIES) as runtime:
        connect(runtime)  # GETs only: the proxy refuses POSTs
        proxy.faults.refuse, proxy.faults.status = 2, status
        value = program.run("pick", runtime=runtime, question="Is Rome the capital of Italy?")
        assert value == expected
        assert proxy.refused == 2 and runtime.client.stats()["retries"] == 2


def test_refusals_past_the_retry_limit_are_a_located_error(proxy, api):
    with on(proxy.url, api, **FAST_RETRIES) as runtime:
        connect(runtime)
        proxy.faults.refuse = 100
        with pytest.raises(GenError) as info:
            sglc.compile(FREE, "free.sgl").run(runtime=runtime)
    text = str(info.value)
    assert "free.sgl:4:16: generation error: gen 'reply'" in text
    assert "answered 503: busy, retry (after 2 retries: max_retries)" in text
    assert proxy.refused == 3  # the first try and two retries


def test_a_server_that_went_away_fails_the_gen_and_the_select(proxy, api):
    program = sglc.load(FEATURES)
    with on(proxy.url, api, **FAST_RETRIES) as runtime:
        assert isinstance(program.run("free", runtime=runtime, topic="tea"), str)
        proxy.stop()
        with pytest.raises(GenError) as info:
            program.run("free", runtime=runtime, topic="coffee")
        assert f"cannot reach {proxy.url}" in str(info.value)
        assert "features.sgl:12:16" in str(info.value)
        with pytest.raises(GenError) as info:
            program.run("pick", runtime=runtime, question="Is it?")
        assert f"cannot reach {proxy.url}" in str(info.value)
        assert "features.sgl:33:16" in str(info.value)  # the select


def test_a_slow_server_times_out_at_the_gen(proxy, api):
    with on(proxy.url, api, timeout_s=0.5) as runtime:
        connect(runtime)
        proxy.faults.delay_s = 2
        with pytest.raises(GenError) as info:
            sglc.load(FEATURES).run("free", runtime=runtime, topic="tea")
    text = str(info.value)
    assert "features.sgl:12:16" in text
    assert "no answer within 0.5 s (the request timeout: timeout_s, --request-timeout)" in text


def test_requests_in_flight_are_bounded(proxy, local, api):
    program = sglc.load(FEATURES)
    questions = [f"Is {c} a city?" for c in ("Rome", "Oslo", "Lima", "Kyiv", "Pune", "Bern")]
    expected = program.run("many", runtime=local, questions=questions)
    with on(proxy.url, api, max_in_flight=2) as runtime:
        assert program.run("many", runtime=runtime, questions=questions) == expected
    assert 1 <= proxy.max_active <= 2


def test_a_server_without_a_tokenizer_route_needs_a_local_tokenizer(proxy, local):
    proxy.faults.hidden.add("/tokenizer")
    with pytest.raises(EngineError, match=r"does not serve its tokenizer .*`--tokenizer PATH`"):
        connect(on(proxy.url, "openai"))
    expected = sglc.load(FEATURES).run("typed", runtime=local)
    path = str(sglc.default_model_path())
    with on(proxy.url, "openai", tokenizer=path) as runtime:
        assert sglc.load(FEATURES).run("typed", runtime=runtime) == expected


def test_connecting_to_a_wrong_model_key_or_url_is_one_clear_error(endpoint):
    with pytest.raises(EngineError, match=r"serves 'default', not 'gpt-9' \(model, --model\)"):
        connect(sglc.Runtime(endpoint=endpoint.base_url, api_key=API_KEY, model="gpt-9"))
    with pytest.raises(EngineError, match="answered 401: invalid API key"):
        connect(sglc.Runtime(endpoint=endpoint.base_url, api_key="wrong"))
    with pytest.raises(EngineError, match="must be an http:// or https:// URL"):
        connect(sglc.Runtime(endpoint="127.0.0.1:1"))


def test_endpoint_options_are_checked_when_given():
    with pytest.raises(ValueError, match="unknown endpoint option.*max_tokens"):
        sglc.Runtime(endpoint="http://127.0.0.1:1", max_tokens=3)
    with pytest.raises(ValueError, match="give a Runtime one of"):
        sglc.Runtime(endpoint="http://127.0.0.1:1", model_path="x")
    with pytest.raises(InvalidRequest, match="max_in_flight must be >= 1"):
        RemoteOptions(max_in_flight=0)
    with pytest.raises(InvalidRequest, match="api must be one of auto, sglc, openai"):
        RemoteOptions(api="grpc")
    with pytest.raises(ValueError, match="not an in-process engine"):
        _ = sglc.Runtime(endpoint="http://127.0.0.1:1").engine


def test_other_servers_features_are_probed_and_fallen_back_from(proxy, local):
    """A vLLM-like server: no `regex` (a `guided_regex`), no `echo`, no token ids back."""
    proxy.faults.unknown_fields |= {"regex", "echo", "return_tokens_as_token_ids"}
    proxy.faults.renamed["guided_regex"] = "regex"
    program = sglc.load(FEATURES)
    with on(proxy.url, "openai") as runtime:
        for fn, args in [("typed", {}), ("free", {"topic": "the sea"}),
                         ("pick", {"question": "Is Rome the capital of Italy?"})]:
            # typed gens under `guided_regex`; the select by one gen under the options' regex
            assert program.run(fn, runtime=runtime, **args) == program.run(fn, runtime=local,
                                                                            **args)
        assert runtime.client.stats()["features"] == {
            "token_prompts": True, "token_outputs": False, "regex_field": "guided_regex",
            "echo_logprobs": False}


def test_a_server_without_regexes_names_the_typed_gen_it_cannot_run(proxy):
    proxy.faults.unknown_fields |= {"regex", "guided_regex", "structured_outputs"}
    with on(proxy.url, "openai") as runtime, pytest.raises(GenError) as info:
        sglc.load(FEATURES).run("typed", runtime=runtime)
    text = str(info.value)
    assert "features.sgl:17:41: generation error: gen 'n': " in text
    assert "does not decode under a regex" in text and "use an sglc, vLLM or SGLang server" in text
