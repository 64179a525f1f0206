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
how much of the text is safe to stream while a stop string might still be completing;
`Stops` adds a request's stop regexes, its `min_tokens` and its healed prefix to them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sglc.constraints.search import Searcher, SearchPattern

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
    stop: str | None  # the stop string (or stop regex) that matched, None when none did

    @property
    def is_stopped(self) -> bool:
        return self.stop is not None



class StopChecker:
    """Finds stop strings in a growing text (OpenAI semantics: the stop string is cut off)."""

    def __init__(self, stop: Iterable[str]) -> None:
        self.stop = tuple(stop)
        if any(not s for s in self.stop):
            raise ValueError("stop strings must be non-empty")

    def feed(self, text: str, new_start: int, floor: int = 0) -> StopResult:
        """Check `text`, of which `text[new_start:]` was just added; `text[:floor]` is not
        searched (a stop string must start at or after it).

        Looks for stop strings that end inside the new text (they may start before
        `new_start`, so a stop string split over tokens is found) and cuts the text at the
        earliest-starting one; on a tie the longer stop string is reported. Call it after
        every append: an occurrence that ended before `new_start` is not reported again.
        """
        best: tuple[int, int, str] | None = None  # (start, -len, stop)
        for s in self.stop:
            start = text.find(s, max(floor, new_start - len(s) + 1))
            if start != -1 and (best is None or (start, -len(s)) < best[:2]):
                best = (start, -len(s), s)
        if best is None:
            return StopResult(text, None)
        return StopResult(text[: best[0]], best[2])

    def safe_len(self, text: str, floor: int = 0) -> int:
        """How much of `text` can be streamed now: all but the longest suffix (starting at or
        after `floor`) that is a prefix of some stop string (it may still grow into one)."""
        safe = len(text)
        for s in self.stop:
            # candidate suffixes start where s's first character occurs in the tail
            i = text.find(s[0], max(floor, len(text) - len(s) + 1))
            while i != -1 and i < safe:
                if s.startswith(text[i:]):
                    safe = i
                    break
                i = text.find(s[0], i + 1)
        return safe


class Stops:
    """Everything that may end a request by its text: stop strings and stop regexes (their
    match is cut off), matched only

    - after `healed_prefix` when the text starts with it (prompt-boundary healing moved that
      text out of the prompt; it is still the prompt's, so no stop may start inside it);
    - in text that arrived once the output has `min_tokens` tokens (vLLM's min_tokens: a
      stop string that ended before then is never reported).
    """

    def __init__(self, strings: Sequence[str], patterns: Sequence[SearchPattern] = (),
                 healed_prefix: str = "", min_tokens: int = 0) -> None:
        self.strings = StopChecker(strings) if strings else None
        self.patterns = tuple(patterns)
        self.healed_prefix = healed_prefix
        self.min_tokens = min_tokens
        self.reset()

    def reset(self) -> None:
        """Forget the text (a jump-forward rewrote it); it is fed again from the start."""
        # where stops may start; None until the text shows whether it starts with the prefix
        self.floor: int | None = None if self.healed_prefix else 0
        self._searchers: list[Searcher] | None = None

    def feed(self, text: str, new_start: int, num_tokens: int) -> StopResult:
        """Check `text`, of which `text[new_start:]` was just added by the output's first
        `num_tokens` tokens: the text cut at the earliest stop, if one matched."""
        if self.floor is None and not self._decide_floor(text):
            return StopResult(text, None)
        floor = self.floor
        if num_tokens < self.min_tokens:  # not armed yet: regexes scan on, matching nothing
            for searcher in self._searchers_from(floor):
                while searcher.feed(text) is not None:
                    pass
            return StopResult(text, None)
        best = self.strings.feed(text, max(new_start, floor), floor) if self.strings else None
        for searcher in self._searchers_from(floor) if self.patterns else ():
            found = searcher.feed(text)
            if found is not None and (best is None or not best.is_stopped
                                      or found[0] < len(best.text)):
                best = StopResult(text[: found[0]], searcher.pattern.pattern)
        return best if best is not None else StopResult(text, None)

    def _searchers_from(self, floor: int) -> list[Searcher]:
        if self._searchers is None:
            self._searchers = [p.searcher(floor) for p in self.patterns]
        return self._searchers

    def _decide_floor(self, text: str) -> bool:
        """Settle `floor` once the text is as long as the healed prefix or departs from it."""
        prefix = self.healed_prefix
        if len(text) < len(prefix) and prefix.startswith(text):
            return False
        self.floor = len(prefix) if text.startswith(prefix) else 0
        return True

    def safe_len(self, text: str) -> int:
        """How much of `text` can be streamed now: nothing that may still become (part of)
        a stop, nor, while undecided, the healed prefix."""
        if self.floor is None:
            return 0
        safe = self.strings.safe_len(text, self.floor) if self.strings else len(text)
        for searcher in self._searchers or ():
            safe = min(safe, searcher.safe_len)
        return safe
