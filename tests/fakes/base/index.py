"""`TenantIndex`: what a fake derives from the tenant's structure (its ids, sort orders, memberships),
built once per `tenant.structure_version` so that a request's work stays O(page)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class TenantIndex(Generic[T]):
    """`get()` returns `build()`'s value for the tenant's current structure: rebuilt, under the
    tenant's lock and once however many requests ask at the same time, when users, groups,
    memberships, roles or organizations were added or removed since the last build."""

    def __init__(self, tenant: Any, build: Callable[[], T]) -> None:
        self._tenant = tenant
        self._build = build
        self._lock = threading.Lock()
        self._version = -1
        self._value: T | None = None

    def get(self) -> T:
        t = self._tenant
        if self._version == t.structure_version:
            return self._value  # type: ignore[return-value]
        with self._lock, t.lock:
            if self._version != t.structure_version:
                version = t.structure_version
                self._value = self._build()
                self._version = version
            return self._value  # type: ignore[return-value]
