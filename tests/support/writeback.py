"""What the write-back tests share (a plugin module: tests/conftest.py registers it): fakes that
may be written to, a linked database per test (the fixture `case` gives a `Case`: the provider's
links, what the fake holds, the writes it received), `orgmig writeback`
run in this process with its output and logs (`writeback`), and users as the provider renders them
less what a write-back may change (`comparable`, `users_by_id`)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from sqlalchemy import text

from tests.fakes.auth0 import DEFAULT_SCOPES as AUTH0_READ
from tests.support.identity import FAKE_OPTIONS, FAKES, Ids, build_tenant
from tests.support.idp import PROVIDER_PREFIXES, Outcome, command_env, run_orgmig

PROVIDERS = ("auth0", "okta", "keycloak")
ATTRIBUTE = {"auth0": "app_user_id", "okta": "appUserId", "keycloak": "appUserId"}
# The requests that write (Keycloak: every request on a user, GET, PUT and GET again).
WRITE_PATH = {"auth0": "/api/v2/users/", "okta": "/api/v1/users/", "keycloak": "/admin/realms/acme/users/"}
WRITE_METHOD = {"auth0": "PATCH", "okta": "POST", "keycloak": "PUT"}
# What `writeback --dry-run` reads where the value lands (paths of its GETs, the token aside).
DRY_READS = {"auth0": [], "okta": ["/api/v1/meta/schemas/user/default"],
             "keycloak": ["/admin/realms/acme/users/profile"]}
KEYCLOAK_ROLES = {"view-users", "query-groups", "view-realm", "manage-realm", "manage-users"}


def fake_options(provider: str, **more) -> dict:
    """Fakes that may be written to, as fast as the tests want them unless a test says otherwise."""
    base = {"auth0": {"scopes": AUTH0_READ | {"update:users"}, "rate_limit": 50, "refill_per_second": 500.0},
            "okta": {"window_seconds": 1.0},
            "keycloak": {"service_account_roles": KEYCLOAK_ROLES}}[provider]
    return {**FAKE_OPTIONS[provider], **base, **more}


@dataclass
class Case:
    provider: str
    url: object
    engine: object
    fake: object
    ids: Ids

    def links(self) -> dict[str, int]:
        """Neutral id -> app user id, for every link of the provider."""
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT external_id, user_id FROM user_identity WHERE provider = :p"),
                                {"p": self.provider}).all()
        return {self.ids.neutral[r.external_id]: r.user_id for r in rows}

    def held(self, attribute: str | None = None) -> dict[str, str]:
        """Neutral id -> the value the provider holds under the attribute, for accounts that hold one."""
        name = attribute or ATTRIBUTE[self.provider]
        return {uid: u.custom[name] for uid, u in self.fake.tenant.users.items() if name in u.custom}

    def writes(self, method: str | None = None) -> list:
        return self.fake.requests_matching(WRITE_PATH[self.provider], method=method or WRITE_METHOD[self.provider])

    def rows(self, sql: str, **params) -> list:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params))


def writeback(c: Case, *args: str, **env: str) -> Outcome:
    """`orgmig writeback --provider P ARGS` in this process, pointed at the fake, logs captured."""
    with command_env({**c.fake.settings(), **env}, clear=(*PROVIDER_PREFIXES, "ORGMIG_WRITEBACK_")):
        return run_orgmig("writeback", "--provider", c.provider, *args,
                          "--database-url", c.url.render_as_string(hide_password=False))


def comparable(provider: str, user: dict, attribute: str) -> dict:
    """A user as the provider renders it, less the attribute written and the update times."""
    user = json.loads(json.dumps(user))
    if provider == "auth0":
        user.pop("updated_at")
        user.setdefault("app_metadata", {}).pop(attribute, None)
    elif provider == "okta":
        for key in ("lastUpdated", "statusChanged"):  # the fake derives statusChanged from lastUpdated
            user.pop(key)
        user["profile"].pop(attribute, None)
    else:
        user.setdefault("attributes", {}).pop(attribute, None)
    return user


def users_by_id(c: Case) -> dict[str, dict]:
    key = {"auth0": "user_id", "okta": "id", "keycloak": "id"}[c.provider]
    return {u[key]: u for u in c.fake.expected_users()}


@pytest.fixture
def case(identity_databases):
    """`case(provider, **fake options)`: a started fake that may be written to, over the identity
    tests' tenant, and a copy of that provider's synced template; stopped and closed after the test."""
    made: list[Case] = []

    def make(provider: str, **options) -> Case:
        tenant = build_tenant(provider)
        if provider == "okta":
            tenant.custom_attributes["appUserId"] = "string"
        fake = FAKES[provider](tenant, **fake_options(provider, **options))
        fake.start()
        url, engine = identity_databases.open(provider, "synced")
        c = Case(provider, url, engine, fake, Ids(provider, fake))
        made.append(c)
        return c

    yield make
    for c in made:
        c.fake.stop()
        c.engine.dispose()
