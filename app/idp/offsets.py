"""Offset paging helpers shared by the Keycloak and Auth0 clients."""

from __future__ import annotations


def next_offset(cursor: str | None, got: int, size: int) -> str | None:
    """The cursor after a page of `got` items asked for with `size`: a short page is the last."""
    start = int(cursor or 0)
    return str(start + got) if got >= size else None


def offset_of(cursor: str | None) -> int:
    return int(cursor or 0)
