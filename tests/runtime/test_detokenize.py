"""Incremental detokenization and stop strings."""

from __future__ import annotations

import functools
import json

from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from sglc.runtime.detokenize import IncrementalDetokenizer, StopChecker, special_token_ids

CORPUS = [
    "héllo 世界 🙂 hello world",
    "the quick brown fox jumps over the lazy dog",
    "naïve café — 你好，世界！ 🙂🙃",
    "don't stop . , ? it's   spaced  out",
] * 5
TEXT_ALPHABET = "héllo 世界🙂 abc.,'?\n"
SPECIALS = ["<unk>", "<s>", "</s>"]


@functools.cache
def byte_level_bpe() -> PreTrainedTokenizerFast:
    """GPT-2 style: ByteLevel pre-tokenizer and decoder, every byte in the vocabulary."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<|end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer)


def _metaspace_bpe_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train a Metaspace BPE, then give it <0xNN> byte tokens (as Llama 2's vocabulary has)."""
    trained = Tokenizer(models.BPE(unk_token="<unk>"))
    trained.pre_tokenizer = pre_tokenizers.Metaspace()
    trained.train_from_iterator(
        CORPUS, trainers.BpeTrainer(vocab_size=160, special_tokens=SPECIALS)
    )
    model = json.loads(trained.to_str())["model"]
    pieces = [
        t for t, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1]) if t not in SPECIALS
    ]
    tokens = SPECIALS + [f"<0x{b:02X}>" for b in range(256)] + pieces
    return {t: i for i, t in enumerate(tokens)}, [tuple(m) for m in model["merges"]]


@functools.cache
def llama2_style_bpe() -> PreTrainedTokenizerFast:
    """SentencePiece style as Llama 2 ships it: `▁` for spaces, byte fallback, Strip decoder."""
    vocab, merges = _metaspace_bpe_vocab()
    tokenizer = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", byte_fallback=True))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first")
    tokenizer.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    tokenizer.add_special_tokens([AddedToken(t, special=True) for t in SPECIALS])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer)


@functools.cache
def metaspace_decoder_bpe() -> PreTrainedTokenizerFast:
    """SentencePiece style with the Metaspace decoder (strips the first token's `▁`)."""
    vocab, merges = _metaspace_bpe_vocab()
    tokenizer = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", byte_fallback=True))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="always")
    tokenizer.decoder = decoders.Sequence(
        [decoders.ByteFallback(), decoders.Metaspace(prepend_scheme="always")]
    )
    tokenizer.add_special_tokens([AddedToken(t, special=True) for t in SPECIALS])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer)


TOKENIZERS = {
    "byte_level": byte_level_bpe,
    "llama2_style": llama2_style_bpe,
    "metaspace": metaspace_decoder_bpe,
}


def reference(tokenizer: PreTrainedTokenizerFast, ids: list[int], skip: bool) -> str:
    return tokenizer.decode(ids, skip_special_tokens=skip, clean_up_tokenization_spaces=False)


def stream(detok: IncrementalDetokenizer, ids: list[int], chunk_sizes: list[int]) -> list[str]:
    """Push `ids` in chunks of the given sizes (cycled); return every push's text and the flush."""
    deltas, pos, sizes = [], 0, chunk_sizes or [1]
    while pos < len(ids):
        size = sizes[len(deltas) % len(sizes)]
        deltas.append(detok.push(ids[pos : pos + size]))
        pos += size
    return [*deltas, detok.flush()]


def byte_token_ids(tokenizer: PreTrainedTokenizerFast) -> dict[int, int]:
    """byte value -> id of its <0xNN> byte-fallback token (empty for byte-level BPE)."""
    vocab = tokenizer.get_vocab()
    return {b: vocab[f"<0x{b:02X}>"] for b in range(256) if f"<0x{b:02X}>" in vocab}


@st.composite
def random_ids(draw: st.DrawFn, name: str) -> list[int]:
    """Random ids; for byte-fallback tokenizers every run of byte tokens spells whole
    characters (see `test_invalid_byte_fallback_run_is_streamed_byte_by_byte`)."""
    tokenizer = TOKENIZERS[name]()
    byte_ids = byte_token_ids(tokenizer)
    if not byte_ids:
        return draw(st.lists(st.integers(0, len(tokenizer) - 1), max_size=24))
    byte_id_set = set(byte_ids.values())
    other_ids = [i for i in range(len(tokenizer)) if i not in byte_id_set]
    char_bytes = st.characters(codec="utf-8").map(lambda c: [byte_ids[b] for b in c.encode()])
    units = st.lists(
        st.one_of(st.sampled_from(other_ids).map(lambda i: [i]), char_bytes), max_size=16
    )
    return [i for unit in draw(units) for i in unit]


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    name=st.sampled_from(sorted(TOKENIZERS)),
    skip=st.booleans(),
    chunk_sizes=st.lists(st.integers(1, 3), max_size=4),
)
def test_pushes_concatenate_to_full_decode_for_random_ids(
    data: st.DataObject, name: str, skip: bool, chunk_sizes: list[int]
) -> None:
    tokenizer = TOKENIZERS[name]()
    ids = data.draw(random_ids(name))
    deltas = stream(IncrementalDetokenizer(tokenizer, skip_special_tokens=skip), ids, chunk_sizes)
    assert "".join(deltas) == reference(tokenizer, ids, skip)


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(sorted(TOKENIZERS)), text=st.text(TEXT_ALPHABET, max_size=30))
def test_valid_text_streams_whole_characters_only(name: str, text: str) -> None:
    tokenizer = TOKENIZERS[name]()
    ids = tokenizer.encode(text, add_special_tokens=False)
    detok = IncrementalDetokenizer(tokenizer)
    streamed = ""
    for token_id in ids:
        delta = detok.push([token_id])
        assert "\ufffd" not in delta
        streamed += delta
    assert streamed + detok.flush() == reference(tokenizer, ids, True)


def test_multibyte_character_split_over_byte_tokens_is_held_back() -> None:
    tokenizer = llama2_style_bpe()
    byte_ids = [tokenizer.convert_tokens_to_ids(f"<0x{b:02X}>") for b in "世".encode()]
    detok = IncrementalDetokenizer(tokenizer)
    assert detok.push(byte_ids[:1]) == ""
    assert detok.push(byte_ids[1:2]) == ""
    assert detok.push(byte_ids[2:]) == "世"
    assert detok.flush() == ""


def test_invalid_byte_fallback_run_is_streamed_byte_by_byte() -> None:
    # The documented exception: decode() turns the whole invalid run into U+FFFDs.
    tokenizer = llama2_style_bpe()
    nul, lone_continuation = (byte_token_ids(tokenizer)[b] for b in (0x00, 0x80))
    detok = IncrementalDetokenizer(tokenizer)
    streamed = detok.push([nul]) + detok.push([lone_continuation]) + detok.flush()
    assert streamed == "\x00\ufffd"
    assert reference(tokenizer, [nul, lone_continuation], True) == "\ufffd\ufffd"


def test_flush_emits_a_trailing_incomplete_character() -> None:
    tokenizer = byte_level_bpe()
    vocab = tokenizer.get_vocab()
    # ByteLevel spells byte 0xE4 as "ä": a lone lead byte of a 3-byte character.
    detok = IncrementalDetokenizer(tokenizer)
    assert detok.push(tokenizer.encode("ok", add_special_tokens=False)) == "ok"
    assert detok.push([vocab["ä"]]) == ""
    assert detok.flush() == "\ufffd"


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    name=st.sampled_from(sorted(TOKENIZERS)),
    prompt=st.text(TEXT_ALPHABET, min_size=1, max_size=20),
)
def test_prompt_context_gives_the_continuation_of_the_prompt(
    data: st.DataObject, name: str, prompt: str
) -> None:
    tokenizer = TOKENIZERS[name]()
    prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
    output_ids = data.draw(random_ids(name))
    prompt_text = reference(tokenizer, prompt_ids, True)
    full_text = reference(tokenizer, prompt_ids + output_ids, True)
    detok = IncrementalDetokenizer(tokenizer, prompt_ids=prompt_ids)
    assert full_text.startswith(prompt_text)
    assert "".join(stream(detok, output_ids, [1])) == full_text[len(prompt_text) :]


def test_sentencepiece_leading_space_kept_after_prompt_dropped_without() -> None:
    tokenizer = llama2_style_bpe()
    world = tokenizer.convert_tokens_to_ids("▁world")
    with_prompt = IncrementalDetokenizer(tokenizer, prompt_ids=tokenizer.encode("hello"))
    alone = IncrementalDetokenizer(tokenizer)
    assert with_prompt.push([world]) == " world"
    assert alone.push([world]) == "world"


def test_skipped_special_token_does_not_eat_the_next_space() -> None:
    tokenizer = llama2_style_bpe()
    ids = tokenizer.encode("hello", add_special_tokens=False)
    end, world = tokenizer.convert_tokens_to_ids(["</s>", "▁world"])
    detok = IncrementalDetokenizer(tokenizer, skip_special_tokens=True)
    assert [detok.push(ids), detok.push([end]), detok.push([world])] == ["hello", "", " world"]
    keep = IncrementalDetokenizer(tokenizer, skip_special_tokens=False)
    assert "".join([keep.push(ids), keep.push([end]), keep.push([world])]) == "hello</s> world"


def test_special_token_ids_are_the_ids_decode_drops() -> None:
    for make in TOKENIZERS.values():
        tokenizer = make()
        dropped = {i for i in range(len(tokenizer))
                   if tokenizer.decode([i], skip_special_tokens=False)
                   and not tokenizer.decode([i], skip_special_tokens=True)}
        assert special_token_ids(tokenizer) == dropped != set()
        assert special_token_ids(tokenizer.backend_tokenizer) == dropped


def test_cost_per_token_does_not_grow_with_length() -> None:
    tokenizer = byte_level_bpe()
    calls: list[int] = []

    class CountingTokenizer:
        backend_tokenizer = None
        all_special_ids: list[int] = []

        def decode(self, ids: list[int], **kwargs: bool) -> str:
            calls.append(len(ids))
            return tokenizer.decode(ids, **kwargs)

    detok = IncrementalDetokenizer(CountingTokenizer())
    ids = tokenizer.encode("the quick brown fox " * 20, add_special_tokens=False)
    out = "".join(detok.push([i]) for i in ids)
    assert out == "the quick brown fox " * 20
    assert max(calls) <= 2


# --- stop strings ---------------------------------------------------------------------


def test_stop_string_spanning_tokens_is_found_and_cut() -> None:
    checker = StopChecker(["world"])
    assert not checker.feed("Hello wor", 6).is_stopped
    result = checker.feed("Hello world!", 9)
    assert result.is_stopped
    assert result == ("Hello ", "world")


def test_earliest_stop_string_wins_whatever_their_order() -> None:
    for stops in (["cd", "bcde"], ["bcde", "cd"]):
        assert StopChecker(stops).feed("abcdef", 0) == ("a", "bcde")
    assert StopChecker(["xyz", "b"]).feed("abxyzb", 0) == ("a", "b")


def test_occurrence_that_ended_before_the_new_text_is_not_reported_again() -> None:
    checker = StopChecker(["ST"])
    assert checker.feed("aSTbc", 3) == ("aSTbc", None)
    assert checker.feed("aSTbc", 2) == ("a", "ST")  # ends at 3, inside text[2:]


def test_no_stop_strings_never_stop_and_hold_nothing() -> None:
    checker = StopChecker([])
    assert checker.feed("anything", 0) == ("anything", None)
    assert checker.safe_len("anything") == len("anything")


def test_safe_len_holds_back_prefixes_of_stop_strings() -> None:
    checker = StopChecker(["</end>", "aab"])
    assert checker.safe_len("abc</e") == 3
    assert checker.safe_len("abc<") == 3
    assert checker.safe_len("abc</x") == 6
    assert checker.safe_len("xaa") == 1
    assert checker.safe_len("xa") == 1
    assert checker.safe_len("") == 0


def first_stop_per_chunk(text: str, stops: list[str], chunk_ends: list[int]) -> str | None:
    """Brute force: the text kept when checking after each chunk (None: never stopped)."""
    prev = 0
    for end in chunk_ends:
        starts = [
            i
            for s in stops
            for i in range(len(text))
            if text.startswith(s, i) and prev < i + len(s) <= end
        ]
        if starts:
            return text[: min(starts)]
        prev = end
    return None


@settings(max_examples=200, deadline=None)
@given(
    text=st.text("ab", max_size=20),
    stops=st.lists(st.text("ab", min_size=1, max_size=4), min_size=1, max_size=3),
    cuts=st.lists(st.integers(0, 20)),
)
def test_streaming_with_stop_strings_never_leaks_part_of_a_stop(
    text: str, stops: list[str], cuts: list[int]
) -> None:
    chunk_ends = sorted({c for c in cuts if 0 < c < len(text)} | {len(text)})
    checker = StopChecker(stops)
    streamed, prev, final = "", 0, None
    for end in chunk_ends:
        result = checker.feed(text[:end], prev)
        if result.is_stopped:
            final = result.text
            break
        streamed += text[len(streamed) : checker.safe_len(text[:end])]
        prev = end
    expected = first_stop_per_chunk(text, stops, chunk_ends)
    assert final == expected
    final_text = text if final is None else final
    assert final_text.startswith(streamed)


# --- Stops: stop strings and regexes, the healed prefix, min_tokens ---------------------


def feed_chunks(stops, chunks: list[str]):
    """Feed growing text chunk by chunk (one token each); the result and what streamed."""
    text, streamed = "", ""
    for k, chunk in enumerate(chunks, start=1):
        start, text = len(text), text + chunk
        result = stops.feed(text, start, k)
        if result.is_stopped:
            return result, streamed
        streamed = text[: stops.safe_len(text)]
    return None, streamed


def test_stops_skip_the_healed_prefix() -> None:
    from sglc.runtime.detokenize import Stops

    result, _ = feed_chunks(Stops([" "], healed_prefix=" "), [" 84", " is"])
    assert result == (" 84", " ")
    # the prefix arrives split over tokens: undecided until it is whole
    result, streamed = feed_chunks(Stops([" "], healed_prefix="  "), [" ", " 8", "4 "])
    assert result == ("  84", " ") and streamed == "  8"
    # an output that departs from the prefix is matched whole
    result, _ = feed_chunks(Stops([" "], healed_prefix="  "), [" x", " y"])
    assert result == ("", " ")


def test_stops_are_armed_at_min_tokens() -> None:
    from sglc.runtime.detokenize import Stops

    result, _ = feed_chunks(Stops(["."], min_tokens=3), ["a.", "b.", "c.", "d."])
    assert result == ("a.b.c", ".")  # the stops that ended before token 3 do not count


def test_stop_regexes_hold_back_a_match_under_way() -> None:
    from sglc.constraints.search import compile_search
    from sglc.runtime.detokenize import Stops

    stops = Stops([], [compile_search(r"<[a-z]+>")])
    result, streamed = feed_chunks(stops, ["hi <", "ta", "g> after"])
    assert result.text == "hi " and result.stop == "<[a-z]+>"
    assert streamed == "hi "
    both = Stops(["g>"], [compile_search(r"<[a-z]+>")])
    assert feed_chunks(both, ["hi <", "ta", "g> after"])[0].text == "hi "
