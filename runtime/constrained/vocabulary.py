"""The tokenizer's vocabulary as outlines-core sees it: token id -> the raw bytes it stands for.

Constrained decoding walks a byte-level automaton, so every token must be mapped to the exact
bytes it contributes to the output, not to its surface string in the tokenizer's vocab file:

* byte-level BPE (GPT-2, Llama-3, Qwen): every byte is spelled as one printable character
  (``Ġ`` = space, ``Ċ`` = newline, ...); the inverse of that table gives the bytes.
* SentencePiece-style BPE with byte fallback (Llama-2, Mistral): ``▁`` stands for a space and
  ``<0xNN>`` tokens for the single byte 0xNN.
* anything else: the tokenizer's own decoder applied to the one token.

Special tokens (the ids decoding with ``skip_special_tokens`` drops, as the detokenizer does:
``sglc.runtime.detokenize.special_token_ids``) never stand for output text and are left out;
so are tokens whose byte string is empty and ids at or past ``logit_width``. Stop ids are kept
out of the text vocabulary: outlines-core takes a single EOS id, so the smallest stop id is the
one given to the Index and the matcher treats every other stop id exactly like it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from outlines_core import Vocabulary

from sglc.runtime.detokenize import special_token_ids

__all__ = [
    "TokenVocabulary",
    "build_vocabulary",
    "byte_vocabulary",
    "token_bytes_from_tokenizer",
    "vocabulary_from_token_bytes",
]

_BYTE_FALLBACK = re.compile(r"<0x([0-9A-Fa-f]{2})>")
_SPIECE_SPACE = "\u2581"


@dataclass(frozen=True, eq=False)
class TokenVocabulary:
    """A tokenizer vocabulary ready for outlines-core, plus what the mask and jump-forward need.

    ``token_bytes[i]`` is the byte string of token ``i`` (``None`` for special, stop, empty and
    missing ids); its length is ``width`` (the logits width). ``eos_id`` is the stop id handed to
    outlines-core; ``stop_ids`` are all stop ids below ``width`` (``eos_id`` included).
    ``bytes_to_ids`` maps each distinct byte string to its ids (several ids may share one, e.g.
    a SentencePiece piece and its byte-fallback token); ``sorted_token_bytes`` lists the
    distinct byte strings sorted (prefix searches); ``hash`` is :func:`vocabulary_hash`.
    """

    outlines: Vocabulary
    token_bytes: list[bytes | None]
    width: int
    eos_id: int
    stop_ids: tuple[int, ...]
    hash: str
    bytes_to_ids: dict[bytes, list[int]] = field(repr=False)
    sorted_token_bytes: tuple[bytes, ...] = field(default=(), repr=False)
    max_token_len: int = 0

    @property
    def mask_words(self) -> int:
        """int32 words per bitmask row: ``ceil(width / 32)``."""
        return -(-self.width // 32)

    def decode(self, token_ids: Iterable[int]) -> bytes:
        """The bytes a sequence of (non-stop) token ids stands for."""
        return b"".join(self.token_bytes[t] or b"" for t in token_ids)


def build_vocabulary(tokenizer: Any, logit_width: int, stop_ids: Iterable[int]) -> TokenVocabulary:
    """Vocabulary of a Hugging Face tokenizer (``PreTrainedTokenizerFast`` or ``tokenizers``).

    ``logit_width`` is the model's logits width (may exceed the tokenizer's size; the extra ids
    are never allowed). ``stop_ids`` must name at least one id below ``logit_width``.
    """
    return vocabulary_from_token_bytes(token_bytes_from_tokenizer(tokenizer), logit_width, stop_ids)


def byte_vocabulary() -> TokenVocabulary:
    """256 single-byte tokens (id = byte value) and stop id 256: a byte-level automaton."""
    return vocabulary_from_token_bytes({b: bytes([b]) for b in range(256)}, 257, [256])


def vocabulary_from_token_bytes(
    token_bytes: Mapping[int, bytes], logit_width: int, stop_ids: Iterable[int]
) -> TokenVocabulary:
    """A :class:`TokenVocabulary` from an id -> bytes map (special tokens already left out)."""
    if logit_width <= 0:
        raise ValueError(f"logit_width must be positive, got {logit_width}")
    stops = tuple(sorted({int(s) for s in stop_ids if 0 <= int(s) < logit_width}))
    if not stops:
        raise ValueError(f"need at least one stop id below logit_width={logit_width}")
    by_id: list[bytes | None] = [None] * logit_width
    for tid, data in token_bytes.items():
        if 0 <= tid < logit_width and data and tid not in stops:
            by_id[tid] = bytes(data)
    bytes_to_ids: dict[bytes, list[int]] = {}
    for tid, data in enumerate(by_id):
        if data is not None:
            bytes_to_ids.setdefault(data, []).append(tid)
    if not bytes_to_ids:
        raise ValueError("the vocabulary has no text tokens")
    return TokenVocabulary(
        outlines=Vocabulary(stops[0], bytes_to_ids),
        token_bytes=by_id,
        width=logit_width,
        eos_id=stops[0],
        stop_ids=stops,
        hash=vocabulary_hash(by_id, stops, logit_width),
        bytes_to_ids=bytes_to_ids,
        sorted_token_bytes=tuple(sorted(bytes_to_ids)),
        max_token_len=max(len(b) for b in bytes_to_ids),
    )


def vocabulary_hash(token_bytes: list[bytes | None], stop_ids: tuple[int, ...], width: int) -> str:
    """sha256 over the (id, bytes) pairs in id order, the sorted stop ids and the width."""
    h = hashlib.sha256(b"sglc-vocab-v1\0")
    h.update(f"{width}:{','.join(map(str, sorted(stop_ids)))}\0".encode())
    for tid, data in enumerate(token_bytes):
        if data is not None:
            h.update(tid.to_bytes(4, "little") + len(data).to_bytes(4, "little") + data)
    return h.hexdigest()


# --- tokenizer -> token bytes -------------------------------------------------------------------


def token_bytes_from_tokenizer(tokenizer: Any) -> dict[int, bytes]:
    """id -> bytes of every non-special token of a HF fast tokenizer or ``tokenizers`` one."""
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    special = special_token_ids(tokenizer)
    added = {tid: tok.content for tid, tok in backend.get_added_tokens_decoder().items()}
    to_bytes = _token_decoder(backend)
    out: dict[int, bytes] = {}
    for text, tid in backend.get_vocab(with_added_tokens=True).items():
        if tid in special:
            continue
        # Added tokens are matched on raw text, so their content is the text itself.
        data = added[tid].encode("utf-8") if tid in added else to_bytes(text)
        if data:
            out[tid] = data
    return out


def _token_decoder(backend: Any):
    """A function mapping one vocab string to its bytes, chosen from the tokenizer's setup."""
    decoder = _component_json(backend.decoder)
    pre = _component_json(backend.pre_tokenizer)
    if "ByteLevel" in decoder or ("ByteLevel" in pre and not decoder):
        return _byte_level_bytes
    model = backend.model
    byte_fallback = bool(getattr(model, "byte_fallback", False)) or "ByteFallback" in decoder
    if _SPIECE_SPACE in decoder or "Metaspace" in decoder or "Metaspace" in pre or byte_fallback:
        return lambda text: _sentencepiece_bytes(text, byte_fallback)
    return lambda text: _generic_bytes(backend, text)


def _component_json(component: Any) -> str:
    """The JSON text of a tokenizers pipeline component ('' when absent)."""
    if component is None:
        return ""
    try:
        state = component.__getstate__()
    except Exception:  # a component without a serializable state
        return type(component).__name__
    text = state.decode("utf-8") if isinstance(state, bytes) else str(state)
    try:  # normalise escapes (e.g. "\u2581") so substring checks see real characters
        return json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        return text


def _bytes_to_unicode() -> dict[int, str]:
    """The byte-level BPE alphabet: printable Latin-1 bytes stand for themselves, the other 68
    bytes are shifted to code points 256.. in byte order."""
    visible = set(range(0x21, 0x7F)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
    table: dict[int, str] = {}
    shifted = 0
    for b in range(256):
        if b in visible:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


_UNICODE_TO_BYTE = {ch: b for b, ch in _bytes_to_unicode().items()}


def _byte_level_bytes(text: str) -> bytes:
    try:
        return bytes(_UNICODE_TO_BYTE[ch] for ch in text)
    except KeyError:  # not in the byte alphabet: a literal (added) token
        return text.encode("utf-8")


def _sentencepiece_bytes(text: str, byte_fallback: bool) -> bytes:
    if byte_fallback:
        m = _BYTE_FALLBACK.fullmatch(text)
        if m:
            return bytes([int(m.group(1), 16)])
    return text.replace(_SPIECE_SPACE, " ").encode("utf-8")


def _generic_bytes(backend: Any, text: str) -> bytes:
    decoder = backend.decoder
    decoded = decoder.decode([text]) if decoder is not None else text
    return decoded.encode("utf-8")
