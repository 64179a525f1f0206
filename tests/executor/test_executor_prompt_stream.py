"""Streams: incremental token ids equal a fresh render; forks are independent; healing."""

from __future__ import annotations

import pytest
from model_fixtures import build_tokenizer  # noqa: E402

from sglc.runtime.executor.generation import heal_gen  # noqa: E402
from sglc.runtime.executor.prompt_stream import PromptStream, PromptStreamError  # noqa: E402


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def chat(tok, messages, generation_turn=None):
    text = tok.apply_chat_template(messages, tokenize=False)
    if generation_turn is not None:
        text += f"<|im_start|>{generation_turn}\n"
    return text


def turn(s, role, *texts, close=True):
    s.begin_role(role)
    for text in texts:
        s.append(text)
    if close:
        s.end_role()


def test_chat_stream_matches_the_template(tok):
    s = PromptStream(tok)
    turn(s, "system", "You are nice.")
    turn(s, "user", "Question: ", "What is 12*7?")
    turn(s, "assistant", "Thought: ", close=False)
    messages = [
        {"role": "system", "content": "You are nice."},
        {"role": "user", "content": "Question: What is 12*7?"},
    ]
    expected = chat(tok, messages, "assistant") + "Thought: "
    assert s.text() == expected
    assert s.prompt_ids() == tok.encode(expected, add_special_tokens=False)


def test_raw_text_between_turns_is_kept_in_order(tok):
    s = PromptStream(tok)
    s.append("Few shot. ")
    turn(s, "user", "hi")
    s.append("between ")
    turn(s, "assistant", "ok")
    assert s.text() == (
        "Few shot. <|im_start|>user\nhi<|im_end|>\nbetween <|im_start|>assistant\nok<|im_end|>\n"
    )
    assert tok.decode(s.prompt_ids(), skip_special_tokens=False) == s.text()


def test_generated_ids_are_kept_and_eos_dropped(tok):
    s = PromptStream(tok)
    s.begin_role("assistant")
    ids = tok.encode("hello world", add_special_tokens=False)
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    s.append_generated("hello world", ids + [eos])
    assert s.prompt_ids()[-len(ids) :] == ids
    s.end_role()
    assert s.text().endswith("hello world<|im_end|>\n")


def test_fork_copies_do_not_share_state(tok):
    s = PromptStream(tok)
    turn(s, "user", "Q", close=False)
    a, b = s.fork(), s.fork()
    a.append(" one")
    a.end_role()
    b.append(" two")
    assert s.text().endswith("Q") and "one" in a.text() and "one" not in b.text()
    assert len(s.prompt_ids()) < len(b.prompt_ids())


def test_nested_role_is_an_error(tok):
    s = PromptStream(tok)
    s.begin_role("user")
    with pytest.raises(PromptStreamError, match="inside the open user turn"):
        s.begin_role("assistant")


def test_replace_tail_retokenizes_the_last_piece(tok):
    s = PromptStream(tok)
    s.begin_role("assistant")
    s.append("Action: ")
    head, tail = s.split_tail()
    assert tail == "Action: "
    joined = s.encode_piece("Action: finish")
    s.replace_tail("Action: finish", joined)
    assert s.text().endswith("Action: finish")
    assert s.prompt_ids() == head + joined


def test_output_cut_after_a_space_joins_the_next_piece(tok):
    # a stop string cut the output inside its last token (" c", as " [[" in a judge reply):
    # the space left at the end goes back to the text that follows, tokenized with it
    sampled = tok.encode("It is. c", add_special_tokens=False)
    assert tok.decode(sampled[-1:]) == " c"  # the tokenizer's own boundary
    s = PromptStream(tok)
    s.begin_role("assistant")
    s.append_generated("It is. ", sampled)
    assert s.tail_joins and s.split_tail()[1] == "It is. "
    s.append("cat is ")
    head, tail = s.split_tail()
    assert tail == "It is. cat is "
    assert s.prompt_ids() == head + tok.encode(tail, add_special_tokens=False)
    healed = heal_gen(s)  # and a gen after it heals the literal's trailing space
    assert healed.head_text == "It is. cat is" and healed.spaces == " "
    # output whose ids spell it exactly is kept as sampled, with nothing to join
    s2 = PromptStream(tok)
    s2.begin_role("assistant")
    ids = tok.encode("done ", add_special_tokens=False)
    s2.append_generated("done ", ids)
    assert not s2.tail_joins and s2.prompt_ids()[-len(ids):] == ids
