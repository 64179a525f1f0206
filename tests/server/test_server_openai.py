"""The server through the official `openai` client: completions, chat, streaming, n,
logprobs, echo, constrained output, sampling extras, usage; greedy outputs equal the
in-process engine's."""

from __future__ import annotations

import json
import re

import jsonschema
import openai
import pytest

PROMPT = "Hello, my name is"
MESSAGES = [{"role": "user", "content": "What is 2+2?"}]


@pytest.fixture(scope="module")
def client(server):
    return server.client()


def test_models_lists_the_served_model(client):
    models = client.models.list()
    assert [m.id for m in models.data] == ["default"]
    assert client.models.retrieve("default").id == "default"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4")


def test_greedy_completion_equals_the_engine(client, local_engine):
    r = client.completions.create(model="default", prompt=PROMPT, max_tokens=12,
                                  temperature=0)
    (expected,) = local_engine.generate(PROMPT, {"max_new_tokens": 12, "temperature": 0})
    assert r.object == "text_completion" and r.id.startswith("cmpl-")
    assert r.choices[0].text == expected.text
    assert r.choices[0].finish_reason == expected.finish_reason.value
    assert r.usage.prompt_tokens == expected.usage.prompt_tokens
    assert r.usage.completion_tokens == expected.usage.completion_tokens
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_greedy_chat_equals_the_engine(client, local_engine):
    r = client.chat.completions.create(model="default", messages=MESSAGES, max_tokens=12,
                                       temperature=0)
    (expected,) = local_engine.generate([MESSAGES], {"max_new_tokens": 12, "temperature": 0})
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == expected.text
    assert r.usage.prompt_tokens == expected.usage.prompt_tokens


def test_n_samples_and_prompt_lists_index_choices(client):
    r = client.completions.create(model="default", prompt=["The sky is", "Dogs are"], n=2,
                                  max_tokens=6, temperature=1.0, seed=7)
    assert [c.index for c in r.choices] == [0, 1, 2, 3]
    each = [client.completions.create(model="default", prompt=p, max_tokens=1).usage
            for p in ("The sky is", "Dogs are")]
    assert r.usage.prompt_tokens == sum(u.prompt_tokens for u in each)  # once per prompt
    assert r.usage.completion_tokens == 4 * 6
    chat = client.chat.completions.create(model="default", messages=MESSAGES, n=3,
                                          max_tokens=6, temperature=1.0)
    assert [c.index for c in chat.choices] == [0, 1, 2]


def test_seed_makes_sampling_repeatable(client):
    def sample(seed):
        r = client.completions.create(model="default", prompt=PROMPT, max_tokens=10,
                                      temperature=1.0, seed=seed)
        return r.choices[0].text

    assert sample(11) == sample(11)
    texts = {sample(s) for s in range(12, 16)}
    assert len(texts) > 1


def test_streamed_completion_equals_the_whole_one(client):
    args = {"model": "default", "prompt": PROMPT, "max_tokens": 16, "temperature": 0}
    whole = client.completions.create(**args)
    chunks = list(client.completions.create(**args, stream=True,
                                            stream_options={"include_usage": True}))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == whole.choices[0].text
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert reasons[-1] == whole.choices[0].finish_reason and set(reasons[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == \
        whole.usage.completion_tokens


def test_streamed_chat_starts_with_the_role_and_ends_with_usage(client):
    args = {"model": "default", "messages": MESSAGES, "max_tokens": 12, "temperature": 0}
    whole = client.chat.completions.create(**args)
    chunks = list(client.chat.completions.create(**args, stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_usage_has_no_usage_chunk(client):
    chunks = list(client.completions.create(model="default", prompt=PROMPT, max_tokens=4,
                                            temperature=0, stream=True))
    assert all(c.choices for c in chunks)


def test_completion_logprobs(client):
    r = client.completions.create(model="default", prompt=PROMPT, max_tokens=8,
                                  temperature=0, logprobs=3)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 8 \
        or r.choices[0].finish_reason == "stop"
    assert all(v <= 0 for v in lp.token_logprobs)
    for token, value, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs, strict=True):
        assert 1 <= len(top) <= 4 and top[token] == value
        assert value == pytest.approx(max(top.values()))  # greedy picks the likeliest
    assert lp.text_offset[0] == 0
    assert lp.text_offset == sorted(lp.text_offset)


def test_echo_with_logprobs_scores_the_prompt(client, server):
    r = client.completions.create(model="default", prompt="The capital of France is",
                                  max_tokens=0, echo=True, logprobs=1)
    choice = r.choices[0]
    assert choice.text == "The capital of France is"
    assert choice.logprobs.token_logprobs[0] is None
    assert "".join(choice.logprobs.tokens) == choice.text
    with server.http() as http:
        score = http.post("/score", json={"prompt": "The capital of France",
                                          "continuations": [" is"]}).json()
    assert choice.logprobs.token_logprobs[-1] == pytest.approx(score["scores"][0]["logprob"],
                                                                abs=1e-4)


def test_echo_streams_the_prompt_first(client):
    chunks = list(client.completions.create(model="default", prompt=PROMPT, max_tokens=4,
                                            temperature=0, echo=True, stream=True))
    assert chunks[0].choices[0].text == PROMPT
    whole = client.completions.create(model="default", prompt=PROMPT, max_tokens=4,
                                      temperature=0, echo=True)
    assert "".join(c.choices[0].text for c in chunks) == whole.choices[0].text


def test_chat_logprobs_have_top_alternatives_and_bytes(client):
    r = client.chat.completions.create(model="default", messages=MESSAGES, max_tokens=6,
                                       temperature=0, logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert content and all(len(t.top_logprobs) == 3 for t in content)
    for t in content:
        assert t.bytes == list(t.token.encode("utf-8"))
        assert t.logprob == pytest.approx(t.top_logprobs[0].logprob)
    no_lp = client.chat.completions.create(model="default", messages=MESSAGES, max_tokens=2)
    assert no_lp.choices[0].logprobs is None


def test_stop_strings_end_the_text(client):
    free = client.completions.create(model="default", prompt=PROMPT, max_tokens=16,
                                     temperature=0).choices[0].text
    stop = free[3:5]
    r = client.completions.create(model="default", prompt=PROMPT, max_tokens=16,
                                  temperature=0, stop=[stop, "zzzz"])
    assert r.choices[0].text == free[: free.index(stop)]
    assert r.choices[0].finish_reason == "stop"


PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 12},
                   "age": {"type": "integer", "minimum": 0, "maximum": 120}},
    "required": ["name", "age"],
}


EXTRACT = [
    {"role": "system", "content": "You extract data from text. Reply with JSON only."},
    {"role": "user", "content": "Extract name and age as JSON.\nText: Ann is 31 years old and "
                                "lives in Oslo."},
]


def test_json_schema_response_format(client):
    r = client.chat.completions.create(
        model="default", messages=EXTRACT, max_tokens=64, temperature=0.7, seed=1,
        response_format={"type": "json_schema",
                         "json_schema": {"name": "person", "schema": PERSON, "strict": True}},
    )
    assert r.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(r.choices[0].message.content), PERSON)


def test_json_object_response_format_is_json(client):
    r = client.chat.completions.create(
        model="default", messages=EXTRACT, max_tokens=64, temperature=0.7, seed=2,
        response_format={"type": "json_object"})
    assert r.choices[0].finish_reason == "stop"
    json.loads(r.choices[0].message.content)


def test_regex_and_choices_extra_fields(client):
    r = client.completions.create(model="default", prompt="Pick a number: ", max_tokens=8,
                                  temperature=0, extra_body={"regex": "[0-9]{3}"})
    assert re.fullmatch("[0-9]{3}", r.choices[0].text)
    chat = client.chat.completions.create(model="default", messages=MESSAGES, max_tokens=8,
                                          extra_body={"choices": ["four", "five"]})
    assert chat.choices[0].message.content in ("four", "five")


def test_sampling_extras_and_penalties_are_accepted(client):
    r = client.completions.create(
        model="default", prompt=PROMPT, max_tokens=12, temperature=0.8, top_p=0.9, seed=3,
        presence_penalty=0.5, frequency_penalty=0.5,
        extra_body={"top_k": 20, "min_p": 0.05, "repetition_penalty": 1.2},
    )
    assert r.choices[0].finish_reason in ("stop", "length")
    greedy = client.completions.create(model="default", prompt=PROMPT, max_tokens=12,
                                       temperature=0)
    top1 = client.completions.create(model="default", prompt=PROMPT, max_tokens=12,
                                     temperature=1.0, extra_body={"top_k": 1})
    assert top1.choices[0].text == greedy.choices[0].text  # top_k=1 is greedy


def test_repeated_prompt_reports_cached_tokens(client):
    prompt = "A long shared context about the weather in Oslo and Rome. " * 4
    client.completions.create(model="default", prompt=prompt, max_tokens=2, temperature=0)
    r = client.completions.create(model="default", prompt=prompt, max_tokens=2, temperature=0)
    assert r.usage.prompt_tokens_details.cached_tokens >= r.usage.prompt_tokens // 2


def test_token_id_prompts(client, local_engine):
    ids = local_engine.tokenizer.encode(PROMPT)
    by_ids = client.completions.create(model="default", prompt=ids, max_tokens=8, temperature=0)
    by_text = client.completions.create(model="default", prompt=PROMPT, max_tokens=8,
                                        temperature=0)
    assert by_ids.choices[0].text == by_text.choices[0].text
