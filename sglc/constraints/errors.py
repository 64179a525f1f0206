"""`ConstraintError`: a constraint that cannot become a regex, and where it goes wrong."""

from __future__ import annotations


class ConstraintError(ValueError):
    """A constraint that cannot become a regex: `position` is the 0-based offset of the
    offending construct in a regex, `pointer` the JSON pointer of the offending keyword in a
    schema (for a schema's `pattern`, both), `hint` a suggestion (or None)."""

    def __init__(self, message: str, *, pointer: str | None = None,
                 position: int | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.pointer = pointer
        self.position = position
        self.hint = hint

    def __str__(self) -> str:
        where = []
        if self.pointer is not None:
            where.append(f"at {self.pointer}" if self.pointer else "at the schema root")
        if self.position is not None:
            where.append(f"position {self.position}")
        return self.message + (f" ({', '.join(where)})" if where else "")


class RegexSyntaxError(ConstraintError):
    """A pattern Python's `re` itself rejects (the other errors are outside the dialect)."""


__all__ = ["ConstraintError", "RegexSyntaxError"]
