"""What the two query parsers (Okta's `filter`/`search`, Auth0's Lucene `q`) share: a predicate
over a field getter, and the left-to-right chain a binary operator makes of its operands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# A parsed query: takes a getter (field name -> the record's value) and says whether it matches.
Predicate = Callable[[Callable[[str], Any]], bool]


def either(a: Predicate, b: Predicate) -> Predicate:
    return lambda get: a(get) or b(get)


def both(a: Predicate, b: Predicate) -> Predicate:
    return lambda get: a(get) and b(get)


def chain(operand: Callable[[], Predicate], operator: Callable[[], bool],
          join: Callable[[Predicate, Predicate], Predicate]) -> Predicate:
    """`operand (operator operand)*`, joined left to right: `operator()` takes the operator when
    one comes next (or says one is implied) and answers whether the chain goes on."""
    left = operand()
    while operator():
        left = join(left, operand())
    return left
