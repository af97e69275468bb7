"""`Faults`: the fault queue (429 storms, 5xx, slow responses, truncated bodies, malformed JSON,
dropped connections, cursors that repeat, listings that never end)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace


@dataclass
class FaultRule:
    kind: str  # 429 | 5xx | drop | slow | truncate | malformed | repeat_cursor | empty_pages
    remaining: int | None  # None: until cleared
    path_prefix: str | None = None
    status: int | None = None
    seconds: float = 0.0
    query: dict[str, str | None] | None = None  # values the request's query must hold (None: absent)

    def matches(self, path: str, query: Mapping[str, str] | None = None) -> bool:
        if self.path_prefix is not None and not path.startswith(self.path_prefix):
            return False
        return all((query or {}).get(key) == value for key, value in (self.query or {}).items())


@dataclass
class TakenFaults:
    delay: float = 0.0
    replace: FaultRule | None = None  # 429, 5xx or drop: the real handler is not run
    body: FaultRule | None = None  # truncate or malformed: applied to the real response

    @property
    def label(self) -> str | None:
        names = [r.kind for r in (self.replace, self.body) if r is not None]
        if self.delay:
            names.insert(0, "slow")
        return "+".join(names) or None


class Faults:
    """Faults for the next requests, consumed in the order they were added.

    Every method takes an optional `path_prefix` (matched against the request path, query
    excluded); without one the fault hits the next requests whatever they are, the token
    endpoint included. A request takes at most one response-replacing fault (429, 5xx, drop),
    at most one body fault (truncate, malformed; only when no replacing fault was taken) and
    the first matching `slow`."""

    _REPLACE = ("429", "5xx", "drop")
    _BODY = ("truncate", "malformed")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self.generation = 0  # bumped by clear(): what a fault handed out (a cursor) may expire with it

    def _add(self, rule: FaultRule) -> FaultRule:
        if rule.remaining is not None and rule.remaining <= 0:
            raise ValueError("n must be positive")
        with self._lock:
            self._rules.append(rule)
        return rule

    def add_429_storm(self, n: int = 5, *, path_prefix: str | None = None) -> FaultRule:
        """The next `n` requests get the provider's real 429 (headers and body)."""
        return self._add(FaultRule("429", n, path_prefix))

    def add_5xx(self, n: int = 3, status: int = 503, *, path_prefix: str | None = None) -> FaultRule:
        """The next `n` requests get `status` (500 with the provider's error body; 502/503/504
        as a fronting proxy or load balancer sends them, an HTML page)."""
        if not 500 <= status <= 599:
            raise ValueError("status must be 5xx")
        return self._add(FaultRule("5xx", n, path_prefix, status=status))

    def slow(self, seconds: float = 0.5, n: int = 2, *, path_prefix: str | None = None) -> FaultRule:
        """The next `n` requests wait `seconds` before being answered (they count as in flight)."""
        return self._add(FaultRule("slow", n, path_prefix, seconds=seconds))

    def truncate_body(self, n: int = 1, *, path_prefix: str | None = None) -> FaultRule:
        """The next `n` responses announce their full Content-Length, send half the body and
        close the connection (the client sees an incomplete read)."""
        return self._add(FaultRule("truncate", n, path_prefix))

    def malformed_json(self, n: int = 1, *, path_prefix: str | None = None) -> FaultRule:
        """The next `n` responses are complete HTTP messages whose JSON body is cut in half."""
        return self._add(FaultRule("malformed", n, path_prefix))

    def drop_connection(self, n: int = 1, *, path_prefix: str | None = None) -> FaultRule:
        """The next `n` requests get no response: the server closes the connection."""
        return self._add(FaultRule("drop", n, path_prefix))

    def repeat_cursor(self, path_prefix: str | None = None, n: int | None = None) -> FaultRule:
        """Paged responses under `path_prefix` point their next page at the page just served
        (Okta: `rel="next"` is the request's own URL; Auth0: `next` is the same checkpoint and
        `page` is ignored; Keycloak: `first` is ignored). Lasts until `clear()`, or `n` pages."""
        return self._add(FaultRule("repeat_cursor", n, path_prefix))

    def empty_pages(self, path_prefix: str | None = None, n: int | None = None, *,
                    query: dict[str, str | None] | None = None) -> FaultRule:
        """Okta only: listings under `path_prefix` never end. Their last page gets a `rel="next"`
        link all the same, and that page and every one after it is `[]` with a next link to a
        cursor never handed out before. Lasts until `clear()`, or `n` such links; after `clear()`
        those cursors are refused as expired (400 E0000031), as a stale cursor is. `query` picks
        one listing of a path by its parameters (None: the parameter is absent): `{"filter": None}`
        is the plain `/api/v1/users`, not its `filter=status eq "DEPROVISIONED"`."""
        return self._add(FaultRule("empty_pages", n, path_prefix, query=query))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self.generation += 1

    @property
    def pending(self) -> list[FaultRule]:
        with self._lock:
            return [replace(r) for r in self._rules]

    def _consume(self, rule: FaultRule) -> None:
        if rule.remaining is not None:
            rule.remaining -= 1
            if rule.remaining <= 0:
                self._rules.remove(rule)

    def take(self, path: str) -> TakenFaults:
        taken = TakenFaults()
        with self._lock:
            slow = next((r for r in self._rules if r.kind == "slow" and r.matches(path)), None)
            replace = next((r for r in self._rules if r.kind in self._REPLACE and r.matches(path)), None)
            body = None
            if replace is None:
                body = next((r for r in self._rules if r.kind in self._BODY and r.matches(path)), None)
            for rule in (slow, replace, body):
                if rule is not None:
                    self._consume(rule)
            if slow is not None:
                taken.delay = slow.seconds
            taken.replace = replace
            taken.body = body
        return taken

    def take_repeat_cursor(self, path: str) -> bool:
        return self._take_kind("repeat_cursor", path)

    def take_empty_page(self, path: str, query: Mapping[str, str]) -> bool:
        return self._take_kind("empty_pages", path, query)

    def _take_kind(self, kind: str, path: str, query: Mapping[str, str] | None = None) -> bool:
        with self._lock:
            rule = next((r for r in self._rules if r.kind == kind and r.matches(path, query)), None)
            if rule is None:
                return False
            self._consume(rule)
            return True
