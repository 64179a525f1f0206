"""Incremental detokenization and stop strings for streamed output.

`IncrementalDetokenizer.push` turns each step's new token ids into newly completed text
at O(window) cost per token, using two offsets into the ids seen so far:

    ids:  [ ... context ... | prefix_offset ... | read_offset ... new ids ]
                              └─ prefix window ─┘ └──── newly read ────┘

    prefix_text = decode(ids[prefix_offset:read_offset])
    new_text    = decode(ids[prefix_offset:])
    delta       = new_text[len(prefix_text):]

Decoding a few tokens of left context makes tokenizers that depend on the neighbouring
token (SentencePiece's leading `▁`, a byte-level BPE character split over two tokens)
come out right. While `new_text` ends in U+FFFD the last character is incomplete, so
nothing is emitted and the offsets stay put; `flush` emits whatever is still held.

`StopChecker` finds stop strings in the accumulated text (they may span tokens) and says
how much of the text is safe to stream while a stop string might still be completing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

# Tokens of prompt context decoded before the first output token.
_INITIAL_CONTEXT_LEN = 5
_REPLACEMENT_CHAR = "\ufffd"


class IncrementalDetokenizer:
    """Streams the text of one sequence's output tokens.

    Contract: with no prompt ids, `"".join(pushes) + flush()` equals
    `tokenizer.decode(all_output_ids, skip_special_tokens=..., clean_up_tokenization_spaces=False)`.
    With prompt ids, the output is the continuation of the prompt as it reads after it
    (so a SentencePiece first token keeps its leading space, unlike a standalone decode).

    Exception: a byte-fallback decoder (SentencePiece `<0xNN>` tokens) turns a run of byte
    tokens that is not valid UTF-8 *as a whole* into one U+FFFD per byte, including bytes
    of characters that were complete. Matching that would mean holding every byte-token
    run until a normal token ends it; instead characters stream as soon as they complete,
    so for such invalid runs the stream keeps the valid characters (`<0x00><0x80>` streams
    "\x00\ufffd" where decode gives "\ufffd\ufffd"). Valid text is unaffected.

    NOTE: clean_up_tokenization_spaces is always off: that cleanup (" ." → ".", " 's" →
    "'s", ...) rewrites text across token boundaries, so text already streamed could no
    longer be a prefix of the final text. The engine should report the concatenated
    stream as the final text, not a fresh `tokenizer.decode` with the tokenizer's default.
    """

    def __init__(
        self,
        tokenizer: Any,
        skip_special_tokens: bool = True,
        prompt_ids: Iterable[int] | None = None,
    ) -> None:
        """`tokenizer` is a HF tokenizer; a fast one (with `backend_tokenizer`) is decoded
        directly through its Rust backend, others through `tokenizer.decode`."""
        self._tokenizer = tokenizer
        self._backend = getattr(tokenizer, "backend_tokenizer", None)
        self.skip_special_tokens = skip_special_tokens
        # Skipped ids never enter the window: a window holding only skipped tokens would
        # decode to "" and make e.g. Metaspace strip the next token's leading space.
        self._skipped_ids = special_token_ids(tokenizer) if skip_special_tokens else frozenset()
        self._ids = self._kept(prompt_ids or ())
        self._read_offset = len(self._ids)
        self._prefix_offset = max(len(self._ids) - _INITIAL_CONTEXT_LEN, 0)

    def push(self, new_ids: Iterable[int]) -> str:
        """Add the ids generated since the last push; return the newly completed text."""
        self._ids.extend(self._kept(new_ids))
        if len(self._ids) == self._read_offset:
            return ""
        prefix_text = self._decode(self._ids[self._prefix_offset : self._read_offset])
        new_text = self._decode(self._ids[self._prefix_offset :])
        if len(new_text) <= len(prefix_text) or new_text.endswith(_REPLACEMENT_CHAR):
            return ""  # an incomplete character (or nothing visible) yet: wait for more
        self._prefix_offset, self._read_offset = self._read_offset, len(self._ids)
        return new_text[len(prefix_text) :]

    def flush(self) -> str:
        """Return the text held back (an incomplete or invalid trailing character) at the end."""
        if len(self._ids) == self._read_offset:
            return ""
        prefix_text = self._decode(self._ids[self._prefix_offset : self._read_offset])
        new_text = self._decode(self._ids[self._prefix_offset :])
        self._prefix_offset, self._read_offset = self._read_offset, len(self._ids)
        return new_text[len(prefix_text) :]

    def _kept(self, ids: Iterable[int]) -> list[int]:
        return [i for i in ids if i not in self._skipped_ids]

    def _decode(self, ids: list[int]) -> str:
        if self._backend is not None:
            return self._backend.decode(ids, skip_special_tokens=self.skip_special_tokens)
        return self._tokenizer.decode(
            ids,
            skip_special_tokens=self.skip_special_tokens,
            clean_up_tokenization_spaces=False,
        )


def special_token_ids(tokenizer: Any) -> frozenset[int]:
    """The ids `decode(..., skip_special_tokens=True)` drops: special tokens, which never
    stand for output text. A fast tokenizer (or a `tokenizers.Tokenizer`) drops its added
    tokens marked special; a slow one its `all_special_ids`."""
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if hasattr(backend, "get_added_tokens_decoder"):
        added = backend.get_added_tokens_decoder()
        return frozenset(i for i, token in added.items() if token.special)
    return frozenset(tokenizer.all_special_ids)


class StopResult(NamedTuple):
    text: str  # the text up to (excluding) the stop string, or all of it when none matched
    stop: str | None  # the stop string that matched, None when none did

    @property
    def is_stopped(self) -> bool:
        return self.stop is not None


class StopChecker:
    """Finds stop strings in a growing text (OpenAI semantics: the stop string is cut off)."""

    def __init__(self, stop: Iterable[str]) -> None:
        self.stop = tuple(stop)
        if any(not s for s in self.stop):
            raise ValueError("stop strings must be non-empty")
        self.max_stop_len = max((len(s) for s in self.stop), default=0)
        # Every non-empty prefix of every stop string, for safe_len's hold-back.
        self._prefixes = frozenset(s[:n] for s in self.stop for n in range(1, len(s) + 1))

    def feed(self, text: str, new_start: int) -> StopResult:
        """Check `text`, of which `text[new_start:]` was just added.

        Looks for stop strings that end inside the new text (they may start before
        `new_start`, so a stop string split over tokens is found) and cuts the text at the
        earliest-starting one; on a tie the longer stop string is reported. Call it after
        every append: an occurrence that ended before `new_start` is not reported again.
        """
        best: tuple[int, int, str] | None = None  # (start, -len, stop)
        for s in self.stop:
            start = text.find(s, max(0, new_start - len(s) + 1))
            if start != -1 and (best is None or (start, -len(s)) < best[:2]):
                best = (start, -len(s), s)
        if best is None:
            return StopResult(text, None)
        return StopResult(text[: best[0]], best[2])

    def safe_len(self, text: str) -> int:
        """How much of `text` can be streamed now: all but the longest suffix that is a
        prefix of some stop string (it may still grow into one)."""
        for n in range(min(self.max_stop_len, len(text)), 0, -1):
            if text[-n:] in self._prefixes:
                return len(text) - n
        return len(text)
