"""Jump-forward decoding (compressed FSM, as in the SGLang paper): append forced text at once.

Where the regex leaves exactly one possible next byte (the keys and punctuation of a JSON object
with fixed keys: ``{"name":"``, ``","age":``), decoding one token per model step is wasted
work. This module finds the forced string and turns it into tokens the engine appends (and
prefills) in one go.

Forced strings come from a **byte-level automaton of the same regex**: an outlines-core Index
over the 256 single-byte tokens (:func:`~sglc.runtime.constrained.vocabulary.byte_vocabulary`).
It is built by the same regex engine as the token index (no dialect differences, as there
would be with interegular's character FSM), is byte-level like the token index (UTF-8 needs no
special handling) and costs milliseconds. A state is forced when it is not final and exactly one
byte leads on; the forced string follows such states until one is not.

Tokens, not bytes, go to the model, and they should be the tokenizer's own (canonical)
tokenization, which can differ from "the tokens generated so far + some tokenization of the
forced string": so the last ``window`` generated tokens plus the forced string are retokenized
with the real tokenizer, and the proposal replaces the generated tokens from the first one that
changed. A trailing retokenized token after which a longer allowed vocabulary token could start
and run past the end of the forced text is backed off (with what follows it): the model will
produce that text itself, possibly as the longer token. The result walks the token index like any
other tokens, so after :meth:`JumpForwarder.apply` the matcher's state is consistent.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sglc.runtime.constrained.index_cache import CompiledIndex, IndexCache, build_index
from sglc.runtime.constrained.matcher import RegexMatcher
from sglc.runtime.constrained.vocabulary import TokenVocabulary, byte_vocabulary
from sglc.runtime.inputs import common_prefix_len

__all__ = ["ForcedPaths", "JumpForward", "JumpForwarder", "make_encoder"]

Encoder = Callable[[str], list[int]]
_BYTE_VOCAB = byte_vocabulary()
_BYTE_STOP = _BYTE_VOCAB.eos_id


@dataclass(frozen=True)
class JumpForward:
    """Drop the last ``num_tokens_to_drop`` generated tokens, then append ``new_token_ids``."""

    num_tokens_to_drop: int
    new_token_ids: list[int]


class ForcedPaths:
    """Forced strings of one regex, from its byte-level automaton (per-state results cached)."""

    def __init__(self, byte_index: CompiledIndex, max_forced_bytes: int = 4096) -> None:
        self.byte_index = byte_index
        self.max_forced_bytes = max_forced_bytes
        self._forced: dict[int, bytes] = {}
        self._byte_state: dict[int, int] = {}

    def forced_from(self, byte_state: int) -> bytes:
        """The bytes forced from ``byte_state`` (empty when the next byte is a choice)."""
        hit = self._forced.get(byte_state)
        if hit is None:
            hit = self._forced[byte_state] = self._walk_forced(byte_state)
        return hit

    def forced_for(self, matcher: RegexMatcher) -> bytes:
        """The bytes forced after the matcher's text (empty once it stopped or may stop)."""
        if matcher.stopped or matcher.is_accepting():
            return b""
        return self.forced_from(self.byte_state_of(matcher))

    def byte_state_of(self, matcher: RegexMatcher) -> int:
        """The byte automaton's state after the matcher's text.

        The token index and the byte index are DFAs of the same regex, so a token state always
        corresponds to the same byte state: it is found once by walking the text, then memoized.
        """
        state = self._byte_state.get(matcher.state)
        if state is None:
            state = self.byte_index.start_state
            for byte in matcher.text_bytes():
                nxt = self.byte_index.next_state(state, byte)
                if nxt is None:
                    regex = self.byte_index.regex
                    raise ValueError(f"byte automaton of {regex!r} rejects the text")
                state = nxt
            self._byte_state[matcher.state] = state
        return state

    def _walk_forced(self, state: int) -> bytes:
        index = self.byte_index.index
        out = bytearray()
        seen: set[int] = set()
        while len(out) < self.max_forced_bytes and state not in seen:
            if index.is_final_state(state):
                break
            allowed = index.get_allowed_tokens(state) or []
            if len(allowed) != 1 or allowed[0] == _BYTE_STOP:
                break
            seen.add(state)
            out.append(allowed[0])
            state = index.get_next_state(state, allowed[0])
        return bytes(out)


def make_encoder(tokenizer: Any) -> Encoder:
    """``text -> token ids`` without special tokens, for a HF fast tokenizer or ``tokenizers``.

    A fast tokenizer's Rust backend is called directly: the same ids without transformers'
    Python wrapping, which costs more than the encoding of a short text (once per jump)."""
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if hasattr(backend, "encode_batch"):  # a `tokenizers.Tokenizer`
        return lambda text: backend.encode(text, add_special_tokens=False).ids
    return lambda text: list(tokenizer.encode(text, add_special_tokens=False))  # a slow one


class JumpForwarder:
    """Proposes and applies jump-forward steps; ``enabled=False`` turns it into a no-op.

    ``encode`` is the tokenizer (:func:`make_encoder`); ``window`` how many generated tokens
    are retokenized with the forced text; ``min_forced_bytes`` the shortest forced string worth
    a jump; ``index_cache`` (optional) caches the byte-level indices on disk with the others;
    ``max_candidates`` bounds the search for boundary-spanning tokens (past it, assume one).
    """

    def __init__(
        self,
        encode: Encoder,
        *,
        enabled: bool = True,
        window: int = 4,
        min_forced_bytes: int = 1,
        index_cache: IndexCache | None = None,
        max_candidates: int = 256,
    ) -> None:
        self.encode = encode
        self.enabled = enabled
        self.window = window
        self.min_forced_bytes = min_forced_bytes
        self.index_cache = index_cache
        self.max_candidates = max_candidates

    def paths(self, compiled: CompiledIndex) -> ForcedPaths:
        """The (memoized) forced-string table for ``compiled``'s regex."""
        paths = compiled.extras.get("forced_paths")
        if paths is None:
            if self.index_cache is not None:
                byte_index = self.index_cache.get(compiled.regex, _BYTE_VOCAB)
            else:
                byte_index = build_index(
                    compiled.regex, _BYTE_VOCAB, compiled.form, compiled.accepts_empty
                )
            paths = compiled.extras["forced_paths"] = ForcedPaths(byte_index)
        return paths

    def propose(self, matcher: RegexMatcher) -> JumpForward | None:
        """The jump-forward step for the matcher's current state, or None (nothing to gain)."""
        if not self.enabled or matcher.stopped:
            return None
        forced = self.paths(matcher.compiled).forced_for(matcher)
        if len(forced) < self.min_forced_bytes:
            return None
        tail_start = _tail_start(matcher, self.window)
        old = matcher.tokens[tail_start:]
        vocab = matcher.vocab
        old_bytes = vocab.decode(old)
        text = _decodable_prefix(old_bytes, forced)
        if text is None or len(text.encode("utf-8")) < len(old_bytes) + self.min_forced_bytes:
            return None
        new = self._retokenize(vocab, text)
        if new is None:
            return None
        states = _walk(matcher.compiled, matcher.state_before(tail_start), new)
        if states is None:
            return None
        keep = self._keep_count(matcher.compiled, new, states)
        if len(vocab.decode(new[:keep])) <= len(old_bytes):
            return None
        common = common_prefix_len(old, new[:keep])
        return JumpForward(len(old) - common, new[common:keep])

    @staticmethod
    def apply(matcher: RegexMatcher, step: JumpForward) -> None:
        """Roll the matcher back and walk the new tokens (what the engine does to its tokens)."""
        matcher.rollback(step.num_tokens_to_drop)
        matcher.advance_many(step.new_token_ids)

    def _retokenize(self, vocab: TokenVocabulary, text: str) -> list[int] | None:
        """The tokenizer's tokens for ``text``, or None if they do not spell exactly its bytes.

        Tokenizers that prepend a space at the start of the text (SentencePiece) are handled by
        encoding after a newline anchor and cutting the tokens up to the anchor.
        """
        expected = text.encode("utf-8")
        ids = self.encode(text)
        if _spells(vocab, ids, expected):
            return ids
        ids = self.encode("\n" + text)
        for cut in range(1, min(len(ids), 4) + 1):
            head = ids[:cut]
            if _spells(vocab, head, None) and vocab.decode(head).endswith(b"\n"):
                return ids[cut:] if _spells(vocab, ids[cut:], expected) else None
        return None

    def _keep_count(self, compiled: CompiledIndex, new: list[int], states: list[int]) -> int:
        """How many of ``new`` to keep: cut before the earliest token at whose start a longer
        allowed token could begin and run past the end of the text."""
        vocab = compiled.vocab
        keep = len(new)
        suffix = b""
        for j in range(len(new) - 1, -1, -1):
            suffix = vocab.token_bytes[new[j]] + suffix
            if len(suffix) >= vocab.max_token_len:
                break
            if self._longer_token_allowed(compiled, states[j], suffix):
                keep = j
        return keep

    def _longer_token_allowed(self, compiled: CompiledIndex, state: int, prefix: bytes) -> bool:
        vocab = compiled.vocab
        ordered = vocab.sorted_token_bytes
        pos = bisect_left(ordered, prefix)
        for seen, k in enumerate(range(pos, len(ordered))):
            tok = ordered[k]
            if not tok.startswith(prefix):
                return False
            if seen >= self.max_candidates:
                return True
            if len(tok) > len(prefix) and any(
                compiled.next_state(state, tid) is not None for tid in vocab.bytes_to_ids[tok]
            ):
                return True
        return False


def _tail_start(matcher: RegexMatcher, window: int) -> int:
    """Index of the first generated token to retokenize: ``window`` back, moved further back
    while that token starts inside a UTF-8 character."""
    tokens = matcher.tokens
    start = max(0, len(tokens) - window)
    while start > 0 and _starts_mid_char(matcher.vocab.token_bytes[tokens[start]]):
        start -= 1
    return start


def _starts_mid_char(data: bytes | None) -> bool:
    return bool(data) and 0x80 <= data[0] < 0xC0


def _decodable_prefix(old: bytes, forced: bytes) -> str | None:
    """``old + forced`` as text, cut at the last complete UTF-8 character (None if invalid)."""
    data = old + forced
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.reason != "unexpected end of data" or err.start < len(old):
            return None
        return data[: err.start].decode("utf-8")


def _spells(vocab: TokenVocabulary, ids: list[int], expected: bytes | None) -> bool:
    """All ids are text tokens (and, if given, together spell ``expected``)."""
    if any(not 0 <= t < vocab.width or vocab.token_bytes[t] is None for t in ids):
        return False
    return expected is None or vocab.decode(ids) == expected


def _walk(compiled: CompiledIndex, state: int, ids: list[int]) -> list[int] | None:
    """States before each token of ``ids`` and after the last, or None if one is rejected."""
    states = [state]
    for tid in ids:
        nxt = compiled.next_state(states[-1], tid)
        if nxt is None:
            return None
        states.append(nxt)
    return states

