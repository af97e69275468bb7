"""Okta's `filter` / `search` expression language, parsed into predicates over an attribute getter."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..base import parse_iso
from ..base.predicates import Predicate, both, chain, either

_SEARCH_OPS = {"eq", "ne", "sw", "co", "ew", "gt", "ge", "lt", "le", "pr"}
_FILTER_OPS = {"eq", "gt", "ge", "lt", "le"}


_FILTER_ATTRS_USERS = {"status", "lastupdated", "id", "profile.login", "profile.email", "profile.firstname",
                       "profile.lastname", "type.id"}


_FILTER_ATTRS_GROUPS = {"id", "type", "lastupdated", "lastmembershipupdated"}


_DATE_ATTRS = {"created", "lastupdated", "lastmembershipupdated", "activated", "statuschanged", "lastlogin",
               "passwordchanged"}


class FilterError(ValueError):
    pass


_TOKEN_RE = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|([A-Za-z0-9_.$:\-]+))')


def _tokenize(text: str) -> list[tuple[str, str]]:
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(f"unexpected input at {pos}")
        if m.group(1):
            out.append(("(", "("))
        elif m.group(2):
            out.append((")", ")"))
        elif m.group(3) is not None:
            out.append(("str", re.sub(r"\\(.)", r"\1", m.group(3))))
        else:
            out.append(("word", m.group(4)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def parse_query(search: str | None, flt: str | None, filter_attrs: set[str]) -> Predicate:
    """A listing's `search` (any attribute, every operator) or else its `filter` (the attributes
    `filter_attrs`, comparisons only)."""
    return parse_expression(search or flt or "", allowed_attrs=None if search else filter_attrs,
                            ops=_SEARCH_OPS if search else _FILTER_OPS)


def parse_expression(text: str, *, allowed_attrs: set[str] | None, ops: set[str]) -> Predicate:
    """Parse Okta's `filter`/`search` syntax: `attr op "value"` (or `attr pr`), combined with
    `and`/`or` (and binds tighter) and parentheses. The predicate takes a getter attr -> value."""
    tokens = _tokenize(text)
    if not tokens:
        raise FilterError("empty expression")
    pos = 0

    def peek() -> tuple[str, str] | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal pos
        if pos >= len(tokens):
            raise FilterError("unexpected end")
        tok = tokens[pos]
        pos += 1
        return tok

    def word(name: str) -> Callable[[], bool]:
        def takes() -> bool:
            tok = peek()
            if tok and tok[0] == "word" and tok[1].lower() == name:
                take()
                return True
            return False
        return takes

    def parse_or() -> Predicate:
        return chain(parse_and, word("or"), either)

    def parse_and() -> Predicate:
        return chain(parse_term, word("and"), both)

    def parse_term() -> Predicate:
        tok = take()
        if tok[0] == "(":
            inner = parse_or()
            if take()[0] != ")":
                raise FilterError("missing )")
            return inner
        if tok[0] != "word":
            raise FilterError("attribute expected")
        attr = tok[1].lower()
        if allowed_attrs is not None and attr not in allowed_attrs:
            raise FilterError(f"unsupported attribute {tok[1]}")
        op_tok = take()
        op = op_tok[1].lower()
        if op_tok[0] != "word" or op not in ops:
            raise FilterError(f"unsupported operator {op_tok[1]}")
        if op == "pr":
            return lambda g: g(attr) not in (None, "")
        val_tok = take()
        if val_tok[0] == "str":
            raw: Any = val_tok[1]
        elif val_tok[1].lower() in ("true", "false"):
            raw = val_tok[1].lower() == "true"
        elif re.fullmatch(r"-?\d+(\.\d+)?", val_tok[1]):
            raw = float(val_tok[1])
        else:
            raise FilterError("value expected")
        if attr in _DATE_ATTRS:
            if not isinstance(raw, str) or (dt := parse_iso(raw)) is None:
                raise FilterError("dates must be quoted ISO-8601 timestamps")
            value: Any = dt
        else:
            value = raw.lower() if isinstance(raw, str) else raw
        if op in ("gt", "ge", "lt", "le") and attr not in _DATE_ATTRS and not isinstance(value, float):
            if allowed_attrs is not None:  # filter: ranges only on dates
                raise FilterError(f"operator {op} is not supported for {attr}")
        return _compare(attr, op, value)

    pred = parse_or()
    if pos != len(tokens):
        raise FilterError("trailing input")
    return pred


def _compare(attr: str, op: str, value: Any) -> Predicate:
    def norm(v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    def pred(get: Callable[[str], Any]) -> bool:
        actual = norm(get(attr))
        if op == "eq":
            return actual == value
        if op == "ne":
            return actual != value
        if actual is None:
            return False
        try:
            if op == "sw":
                return isinstance(actual, str) and actual.startswith(value)
            if op == "co":
                return isinstance(actual, str) and value in actual
            if op == "ew":
                return isinstance(actual, str) and actual.endswith(value)
            if op == "gt":
                return actual > value
            if op == "ge":
                return actual >= value
            if op == "lt":
                return actual < value
            if op == "le":
                return actual <= value
        except TypeError:
            return False
        return False

    return pred
