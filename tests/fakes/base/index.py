"""What a fake keeps of the tenant so that a request's work stays O(page): `TenantIndex` (its ids,
sort orders, memberships), built once per `tenant.structure_version`, and `Renderings` (a user's
or group's document, a derived list), each kept until the version it was built from changes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
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


class Renderings:
    """`get(key, version, build)` returns what `build()` made for `key` while `version` (the
    user's, the group's or the tenant's counter it was made from) is the one it was made at, and
    builds it again once that changes. Races between request threads only build twice."""

    def __init__(self) -> None:
        self._kept: dict[Hashable, tuple[Hashable, Any]] = {}

    def get(self, key: Hashable, version: Hashable, build: Callable[[], T]) -> T:
        hit = self._kept.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        value = build()
        self._kept[key] = (version, value)
        return value

    def clear(self) -> None:
        self._kept.clear()
