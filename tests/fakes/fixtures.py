"""Pytest fixtures for the fake identity providers.

Registered for every test by tests/conftest.py (`pytest_plugins`). Each fake is also a plain
context manager (`with FakeOkta(tenant) as okta: ...`), for code outside pytest.

- `idp_tenant`: a fresh small tenant (300 users, 40 groups, seed 7) per test; mutate freely.
- `fake_okta`, `fake_keycloak`, `fake_auth0`: default servers over `idp_tenant`, started for the
  test and stopped after it.
- `start_fake`: a factory for custom settings, e.g.
  `okta = start_fake(FakeOkta, rate_limit_per_minute=5, window_seconds=1)`; every server it
  starts is stopped after the test. `tenant=` defaults to `idp_tenant`.
- `benchmark_tenant`: one 100,000-user / 200-group tenant per session (read-only: do not
  mutate it, other tests share it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from .auth0 import FakeAuth0
from .base import FakeServer
from .keycloak import FakeKeycloak
from .okta import FakeOkta
from .tenant import Tenant, make_tenant

__all__ = [
    "idp_tenant",
    "benchmark_tenant",
    "start_fake",
    "fake_okta",
    "fake_keycloak",
    "fake_auth0",
]

F = TypeVar("F", bound=FakeServer)


@pytest.fixture
def idp_tenant() -> Tenant:
    return make_tenant(users=300, groups=40, seed=7)


@pytest.fixture(scope="session")
def benchmark_tenant() -> Tenant:
    return make_tenant(users=100_000, groups=200, seed=7)


@pytest.fixture
def start_fake(idp_tenant: Tenant) -> Iterator[Callable[..., Any]]:
    started: list[FakeServer] = []

    def start(cls: type[F], tenant: Tenant | None = None, **kwargs: Any) -> F:
        fake = cls(tenant if tenant is not None else idp_tenant, **kwargs)
        fake.start()
        started.append(fake)
        return fake

    try:
        yield start
    finally:
        for fake in reversed(started):
            fake.stop()


@pytest.fixture
def fake_okta(idp_tenant: Tenant) -> Iterator[FakeOkta]:
    with FakeOkta(idp_tenant) as fake:
        yield fake


@pytest.fixture
def fake_keycloak(idp_tenant: Tenant) -> Iterator[FakeKeycloak]:
    with FakeKeycloak(idp_tenant) as fake:
        yield fake


@pytest.fixture
def fake_auth0(idp_tenant: Tenant) -> Iterator[FakeAuth0]:
    with FakeAuth0(idp_tenant) as fake:
        yield fake
