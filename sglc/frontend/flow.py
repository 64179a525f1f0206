"""Facts about a block of statements: whether control may fall off its end, the first role
turn it opens, the variables it binds (a fork body's outputs)."""

from __future__ import annotations

from sglc.frontend import ast as A


def first_role_turn(body: tuple[A.Stmt, ...]) -> A.Role | A.RoleBlock | None:
    for s in body:
        if isinstance(s, (A.Role, A.RoleBlock)):
            return s
        for inner in _sub_blocks(s):
            found = first_role_turn(inner)
            if found is not None:
                return found
    return None


def _sub_blocks(s: A.Stmt) -> list[tuple[A.Stmt, ...]]:
    if isinstance(s, A.If):
        return [s.body, s.orelse]
    if isinstance(s, (A.For, A.While, A.Fork, A.ParallelFor)):
        return [s.body]
    return []


def falls_through(body: tuple[A.Stmt, ...]) -> bool:
    """May control reach the end of `body`? (conservative: loops may exit)"""
    for s in body:
        if isinstance(s, A.Return):
            return False
        if isinstance(s, A.If) and s.orelse and not falls_through(s.body) \
                and not falls_through(s.orelse):
            return False
        if isinstance(s, A.While) and isinstance(s.cond, A.Bool) and s.cond.value \
                and not _breaks(s.body):
            return False
    return True


def _breaks(body: tuple[A.Stmt, ...]) -> bool:
    for s in body:
        if isinstance(s, A.Break):
            return True
        if isinstance(s, A.If) and (_breaks(s.body) or _breaks(s.orelse)):
            return True
        if isinstance(s, (A.RoleBlock,)) and _breaks(s.body):
            return True
    return False


def bound_names(stmts: tuple[A.Stmt, ...]) -> tuple[str, ...]:
    """The variables a branch body binds (nested fork / parallel-for bodies excluded)."""
    names: dict[str, None] = {}
    for s in stmts:
        for name in _binds(s):
            names[name] = None
    return tuple(names)


def _binds(s: A.Stmt) -> list[str]:
    if isinstance(s, (A.Let, A.ParallelFor, A.Fork)):
        return [s.name]
    if isinstance(s, (A.PromptStmt, A.Role)):
        return [i.name for i in s.items if isinstance(i, (A.Gen, A.Select))]
    if isinstance(s, A.For):
        return [s.var, *bound_names(s.body)]
    if isinstance(s, (A.RoleBlock, A.While)):
        return list(bound_names(s.body))
    if isinstance(s, A.If):
        return [*bound_names(s.body), *bound_names(s.orelse)]
    return []


__all__ = ["bound_names", "falls_through", "first_role_turn"]
