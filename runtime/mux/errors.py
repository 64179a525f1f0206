"""The multiplexer's one error type."""

from __future__ import annotations


class MuxError(ValueError):
    """A bad predictor file, outcome log or multiplexer setting; the message names the file
    (and line) or the option, and what to do."""
