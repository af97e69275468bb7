"""The subset of Lucene query syntax Auth0's user search (`q`) takes, parsed into predicates over
a field getter."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..base import parse_iso
from ..base.predicates import Predicate, both, chain, either


class QueryError(ValueError):
    pass


_LUCENE_TOKEN = re.compile(
    r'\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<op>AND\b|OR\b|NOT\b|&&|\|\|)|(?P<neg>[-!])(?=\S)'
    r'|(?P<field>[A-Za-z_][\w.\[\]]*):(?P<value>"(?:[^"\\]|\\.)*"|[\[{][^\]}]*[\]}]|[^\s()]+))'
)


def parse_lucene(text: str) -> Predicate:
    """Parse the subset of Auth0's user search (v3) syntax a migration needs: `field:value`,
    `field:"quoted"`, `field:prefix*`, ranges `field:[a TO b]` / `{a TO b}` (either bound `*`),
    `_exists_:field`, AND / OR / NOT / `-`, parentheses; juxtaposed terms are ANDed."""
    tokens: list[tuple[str, Any]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _LUCENE_TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise QueryError(f"cannot parse the query near {text[pos:pos + 20]!r}")
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if m.group("lp"):
            tokens.append(("(", None))
        elif m.group("rp"):
            tokens.append((")", None))
        elif m.group("op"):
            op = {"&&": "AND", "||": "OR"}.get(m.group("op"), m.group("op"))
            tokens.append((op, None))
        elif m.group("neg"):
            tokens.append(("NOT", None))
        else:
            tokens.append(("term", (m.group("field"), m.group("value"))))
    if not tokens:
        raise QueryError("empty query")
    i = 0

    def peek() -> str | None:
        return tokens[i][0] if i < len(tokens) else None

    def takes_or() -> bool:
        nonlocal i
        if peek() == "OR":
            i += 1
            return True
        return False

    def takes_and() -> bool:  # AND, or implied between juxtaposed terms
        nonlocal i
        if peek() == "AND":
            i += 1
            return True
        return peek() in ("NOT", "term", "(")

    def parse_or() -> Predicate:
        return chain(parse_and, takes_or, either)

    def parse_and() -> Predicate:
        return chain(parse_unary, takes_and, both)

    def parse_unary() -> Predicate:
        nonlocal i
        kind = peek()
        if kind is None:
            raise QueryError("unexpected end of query")
        if kind == "NOT":
            i += 1
            inner = parse_unary()
            return lambda g: not inner(g)
        if kind == "(":
            i += 1
            inner = parse_or()
            if peek() != ")":
                raise QueryError("missing )")
            i += 1
            return inner
        if kind == "term":
            fld, raw = tokens[i][1]
            i += 1
            return _term(fld, raw)
        raise QueryError(f"unexpected {kind}")

    pred = parse_or()
    if i != len(tokens):
        raise QueryError("trailing input in query")
    return pred


def _coerce(raw: str) -> Any:
    if raw in ("true", "false"):
        return raw == "true"
    if re.fullmatch(r"-?\d+", raw):
        return int(raw)
    dt = parse_iso(raw)
    return dt if dt is not None else raw.lower()


def _cmp_value(actual: Any, bound: Any) -> tuple[Any, Any] | None:
    if isinstance(bound, datetime):
        if isinstance(actual, str):
            actual = parse_iso(actual)
        return (actual, bound) if isinstance(actual, datetime) else None
    if isinstance(bound, int) and not isinstance(bound, bool):
        return (actual, bound) if isinstance(actual, (int, float)) and not isinstance(actual, bool) else None
    return (str(actual).lower(), str(bound)) if actual is not None else None


def _term(fld: str, raw: str) -> Predicate:
    if fld == "_exists_":
        name = raw.strip('"')
        return lambda g: g(name) not in (None, "", [], {})
    if raw[0] in "[{":
        m = re.fullmatch(r"([\[{])\s*(\S+)\s+TO\s+(\S+)\s*([\]}])", raw)
        if not m:
            raise QueryError(f"bad range {raw}")
        lo_inc, hi_inc = m.group(1) == "[", m.group(4) == "]"
        lo_raw, hi_raw = m.group(2).strip('"'), m.group(3).strip('"')
        lo = None if lo_raw == "*" else _coerce(lo_raw)
        hi = None if hi_raw == "*" else _coerce(hi_raw)

        def in_range(g: Callable[[str], Any]) -> bool:
            actual = g(fld)
            if actual is None:
                return False
            if lo is not None:
                pair = _cmp_value(actual, lo)
                if pair is None or (pair[0] < pair[1] if lo_inc else pair[0] <= pair[1]):
                    return False
            if hi is not None:
                pair = _cmp_value(actual, hi)
                if pair is None or (pair[0] > pair[1] if hi_inc else pair[0] >= pair[1]):
                    return False
            return True

        return in_range
    if raw.startswith('"'):
        want = re.sub(r"\\(.)", r"\1", raw[1:-1]).lower()
        return lambda g: _eq(g(fld), want, prefix=False)
    if raw.startswith("*"):
        raise QueryError("wildcards are not allowed at the beginning of a term")
    if raw.endswith("*"):
        want = raw[:-1].lower()
        return lambda g: _eq(g(fld), want, prefix=True)
    value = _coerce(raw)
    if isinstance(value, datetime):
        return lambda g: (p := _cmp_value(g(fld), value)) is not None and p[0] == p[1]
    return lambda g: _eq(g(fld), value, prefix=False)


def _eq(actual: Any, want: Any, *, prefix: bool) -> bool:
    if isinstance(actual, list):
        return any(_eq(a, want, prefix=prefix) for a in actual)
    if actual is None:
        return False
    if isinstance(want, bool) or isinstance(actual, bool):
        return str(actual).lower() == str(want).lower()
    a = str(actual).lower()
    w = str(want).lower()
    return a.startswith(w) if prefix else a == w


def _resolve(doc: Any, path: str) -> Any:
    """`identities[0].connection`, `app_metadata.department`, `identities.connection` (any)."""
    cur: Any = doc
    for part in path.split("."):
        m = re.fullmatch(r"([^\[]+)(?:\[(\d+)\])?", part)
        if not m:
            return None
        key, index = m.group(1), m.group(2)
        if isinstance(cur, list):
            cur = [c.get(key) for c in cur if isinstance(c, dict)]
        elif isinstance(cur, dict):
            cur = cur.get(key)
        else:
            return None
        if index is not None:
            cur = cur[int(index)] if isinstance(cur, list) and int(index) < len(cur) else None
        if cur is None:
            return None
    return cur
