"""Counts as a person reads them, the same everywhere: thousands separated ("3,000 users"), the
noun agreeing with its number ("1 link", "2 links")."""

from __future__ import annotations


def plural(n: int, word: str, many: str | None = None) -> str:
    """`plural(1, "link")` is "1 link", `plural(3000, "user")` "3,000 users", `plural(2, "entry",
    "entries")` "2 entries"."""
    return f"{n:,} {word if n == 1 else many or word + 's'}"
