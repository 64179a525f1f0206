"""`ProgramEvents`: what a running program reports as it goes.

    class Show(sglc.ProgramEvents):
        def on_delta(self, fn, name, text):   # gen `name` decoded some more text
            print(text, end="")

    prog.react("What is 12*7?", events=Show())

`fn` names the SGL call the gen or select is in, as call stacks do: "react",
"solve (fork branch 2 of 3)". Branches run concurrently, so the pieces of different gens
interleave; `(fn, name)` tells them apart. Methods run on the program's event loop: keep
them quick.
"""

from __future__ import annotations


class ProgramEvents:
    """Subclass it and override what you need; the base ignores everything. Passing events
    to a program also asks the model to stream each gen's text (`on_delta`)."""

    def on_delta(self, fn: str, name: str, text: str) -> None:
        """Gen `name` has decoded `text` more (before its value is parsed or checked); for a
        gen with `n` samples, the first sample's text."""

    def on_value(self, fn: str, name: str, text: str) -> None:
        """Gen or select `name` is done: its text as the program sees it (a gen's without
        the spaces moved from the prompt into its first token), before it is parsed into
        the gen's type; once per sample for a gen with `n`."""


__all__ = ["ProgramEvents"]
