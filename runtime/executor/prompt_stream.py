"""A prompt stream: what one SGL function call has written so far, kept as token ids.

A stream is raw text and chat messages, in the order written (IR semantics: text appended
while no role turn is open is raw text outside any message). Role turns (`system`, `user`,
`assistant`) are rendered with the model's chat template; a model without one gets a plain
"Role: content" transcript.

Token ids are kept incrementally, so an append never re-tokenizes the history:

    ids = raw | closed turn | closed turn | raw | ... | open turn: header + content
                `-- header and tail rendered by the template once per turn --'

- Each appended text piece is tokenized on its own (`add_special_tokens=False`, except the
  very first raw piece, which gets the tokenizer's BOS the way a plain prompt would);
  generated text keeps the token ids the model sampled, so the next call's prompt extends
  the previous one token for token and the engine's radix cache matches it.
- A turn's header (`<|im_start|>assistant\n`) and tail (`<|im_end|>\n`) are cut out of
  the template's rendering of the messages, by rendering with a sentinel as the content.

Exact and approximate: the text is exactly what the template renders. The ids equal a
fresh tokenization of that text except where BPE would merge across the border of two
appended pieces (there the model sees a valid, slightly different segmentation; a generated
piece keeps the model's own tokens). A template that is not concatenative (rendering one
more turn rewrites earlier ones) is detected and the history re-tokenized from the
rendering, exactly for chat text; raw text between turns then moves to the front.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from sglc.runtime.executor.client import Tokenizer

_SENTINEL = "\x00SGLC_CONTENT\x00"


class PromptStreamError(Exception):
    """A stream operation that cannot be done (the interpreter locates it in the source)."""


@dataclass
class _Turn:
    role: str
    header_text: str
    header_ids: list[int]
    content: str = ""
    content_ids: list[int] = field(default_factory=list)
    has_generated: bool = False  # model output inside: its sampled ids are kept


class PromptStream:
    """One call's prompt. Not thread-safe; each fork branch gets its own `fork()` copy."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []  # committed: raw text and closed turns
        self.committed_text = ""  # what self.ids spell
        self.raw_text = ""  # all raw pieces (for re-tokenizing after a template rewrite)
        self.messages: list[dict[str, str]] = []
        self.rendered = ""  # the template's rendering of self.messages
        self.turn: _Turn | None = None
        self.tail_text = ""  # the last appended text piece, while nothing came after it
        self.tail_len = 0  # ... and how many ids it took
        # the tail is model output that a stop string cut after a space ("right. " of the
        # token " [["): text appended next joins it, and a gen heals its trailing spaces
        self.tail_joins = False

    # -- reading -----------------------------------------------------------------------------
    @property
    def role(self) -> str | None:
        return self.turn.role if self.turn else None

    def prompt_ids(self) -> list[int]:
        """The prompt for a model call now: everything, ending inside the open turn."""
        if self.turn is None:
            return list(self.ids)
        return self.ids + self.turn.header_ids + self.turn.content_ids

    def text(self) -> str:
        """The prompt as text (what `prompt_ids` encodes, up to segmentation)."""
        out = self.committed_text
        if self.turn is not None:
            out += self.turn.header_text + self.turn.content
        return out

    # -- writing -----------------------------------------------------------------------------
    def append(self, text: str) -> None:
        """Append text to the open turn, or as raw text when no turn is open."""
        if not text:
            return
        if self.tail_joins:  # tokenized with the cut output before it: "yes. The answer is"
            text = self.tail_text + text
            ids = self.encode_piece(text)
            self.replace_tail(text, ids)
        else:
            ids = self._encode(text, is_first=not self.ids and self.turn is None)
            self._push(text, ids)
        self._set_tail(text, len(ids))

    # Prompt-boundary healing: a prompt that ends in "Action: " is tokenized [.., ":", " "],
    # while the model learned [.., ":", " calculator"]. The executor scores and generates
    # from the head before the last text piece and re-tokenizes that piece together with
    # what follows it (see generation.py).
    def split_tail(self) -> tuple[list[int], str]:
        """(prompt ids without the last text piece, that piece); ("" when there is none)."""
        ids = self.prompt_ids()
        if not self.tail_len:
            return ids, ""
        return ids[: -self.tail_len], self.tail_text

    def encode_piece(self, text: str) -> list[int]:
        """Ids of `text` if it replaced the last text piece."""
        head = self.prompt_ids()[: -self.tail_len] if self.tail_len else self.prompt_ids()
        return self._encode(text, is_first=not head and self.turn is None)

    def replace_tail(self, text: str, ids: list[int]) -> None:
        """Swap the last text piece for `text` spelled by `ids` (a healed re-tokenization
        of the piece plus what followed it)."""
        if self.tail_len:
            keep = self.turn.content_ids if self.turn is not None else self.ids
            del keep[len(keep) - self.tail_len :]
            if self.turn is not None:
                self.turn.content = self.turn.content[
                    : len(self.turn.content) - len(self.tail_text)
                ]
            else:
                cut = len(self.tail_text)
                self.raw_text, self.committed_text = (
                    self.raw_text[:-cut],
                    self.committed_text[:-cut],
                )
        self._push(text, list(ids))
        self._set_tail()

    def append_generated(self, text: str, token_ids: list[int]) -> None:
        """Append a model's output, keeping its sampled ids when they spell `text` exactly
        (they do not when a stop string cut the text mid-token, or for a trailing EOS).

        Output cut mid-token after a space (`gen why(stop="[[")` sampled " [[" and keeps
        "right. ") stays the tail piece: what comes next is tokenized with it, so the space
        goes back to the following token as the model saw it in training (" [[", " The")."""
        if not text:
            return
        ids = list(token_ids)
        for candidate in (ids, ids[:-1]):  # the last may be the EOS / stop token
            if candidate and self.tokenizer.decode(candidate, skip_special_tokens=False) == text:
                ids, cut = candidate, False
                break
        else:
            ids, cut = self._encode(text, is_first=False), True
        self._push(text, ids)
        if self.turn is not None:
            self.turn.has_generated = True
        if cut and text.endswith(" "):
            self._set_tail(text, len(ids), joins=True)
        else:
            self._set_tail()

    def begin_role(self, role: str) -> None:
        """Open a role turn; one must not be open already (PromptStreamError)."""
        if self.turn is not None:
            raise PromptStreamError(f"cannot open a {role} turn inside the open {self.turn.role} turn")
        rendered = self._render([*self.messages, {"role": role, "content": _SENTINEL}])
        cut = rendered.find(_SENTINEL)
        if cut < 0:
            raise PromptStreamError(f"the model's chat template drops the content of {role} turns")
        if not rendered.startswith(self.rendered):
            self._rebase("")  # the template rewrites history: the header spells all of it
        header = rendered[len(self.rendered) : cut]
        self.turn = _Turn(role, header, self._encode(header, is_first=False))
        self._set_tail()

    def end_role(self) -> None:
        """Close the open turn: it becomes a message; its tail comes from the template."""
        turn = self.turn
        if turn is None:
            return
        self.turn = None
        self._set_tail()
        if not turn.has_generated:
            # NOTE: a turn written only by the program is re-tokenized whole when it closes,
            # so later calls see the segmentation the model was trained on ("Text: " + "Ann"
            # piecewise is [":", " ", "Ann"]; whole it is [":", " Ann"]).
            turn.content_ids = self._encode(turn.content, is_first=False)
        message = {"role": turn.role, "content": turn.content}
        rendered = self._render([*self.messages, message])
        self.messages.append(message)
        written = self.rendered + turn.header_text + turn.content
        if rendered.startswith(written):
            tail = rendered[len(written) :]
            self.ids += turn.header_ids + turn.content_ids + self._encode(tail, is_first=False)
            self.committed_text += turn.header_text + turn.content + tail
            self.rendered = rendered
        else:
            self._rebase(rendered)

    def fork(self) -> PromptStream:
        """An independent copy sharing nothing mutable (ids are copied, O(length))."""
        other = copy.copy(self)
        other.ids = list(self.ids)
        other.messages = [dict(m) for m in self.messages]
        if self.turn is not None:
            other.turn = _copy_turn(self.turn)
        return other

    # -- helpers -----------------------------------------------------------------------------
    def _set_tail(self, text: str = "", num_ids: int = 0, *, joins: bool = False) -> None:
        self.tail_text, self.tail_len, self.tail_joins = text, num_ids, joins

    def _push(self, text: str, ids: list[int]) -> None:
        if self.turn is not None:
            self.turn.content += text
            self.turn.content_ids += ids
        else:
            self.raw_text += text
            self.committed_text += text
            self.ids += ids

    def _encode(self, text: str, *, is_first: bool) -> list[int]:
        if not text:
            return []
        return list(self.tokenizer.encode(text, add_special_tokens=is_first))

    def _render(self, messages: list[dict[str, str]]) -> str:
        if not getattr(self.tokenizer, "chat_template", None):
            # No template (a base model): a plain "Role: content" transcript.
            return "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in messages)
        try:
            return self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=False
            )
        except Exception as exc:  # jinja raises anything: role order, missing system, ...
            roles = ", ".join(m["role"] for m in messages)
            raise PromptStreamError(
                f"the model's chat template rejected the turns [{roles}]: {exc}"
            ) from None

    def _rebase(self, rendered: str) -> None:
        """The template rewrote earlier turns: re-tokenize from the rendering. (Chat text
        never gets the tokenizer's special tokens: templates write their own BOS.)"""
        self.ids = self._encode(self.raw_text, is_first=True) + self._encode(
            rendered, is_first=False
        )
        self.committed_text = self.raw_text + rendered
        self.rendered = rendered


def _copy_turn(turn: _Turn) -> _Turn:
    return _Turn(
        turn.role, turn.header_text, list(turn.header_ids), turn.content, list(turn.content_ids),
        turn.has_generated,
    )
