"""The neutral records a tenant holds (users, groups, roles, organizations) and the vocabulary they
share with every provider (Okta's user statuses, SimpleReport's roles)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

UTC = UTC


STATUSES = (
    "ACTIVE",
    "STAGED",
    "PROVISIONED",
    "SUSPENDED",
    "DEPROVISIONED",
    "LOCKED_OUT",
    "PASSWORD_EXPIRED",
    "RECOVERY",
)


# SimpleReport organization roles, in the order their Okta groups are created.
ORG_ROLE_NAMES = ("NO_ACCESS", "ADMIN", "USER", "ENTRY_ONLY", "ALL_FACILITIES")


SITE_ADMIN_ROLE = "SITE_ADMIN"


REFERENCE_NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def _ms(dt: datetime) -> datetime:
    """UTC, truncated to millisecond precision (what every provider stores); naive means UTC."""
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return dt.replace(microsecond=(dt.microsecond // 1000) * 1000)


def utcnow() -> datetime:
    return _ms(datetime.now(UTC))


@dataclass(slots=True, eq=False)
class User:
    id: str
    login: str
    email: str | None
    email_verified: bool
    first_name: str
    last_name: str
    status: str
    created: datetime
    last_updated: datetime
    last_login: datetime | None = None
    custom: dict[str, Any] = field(default_factory=dict)
    version: int = 0

    @property
    def username(self) -> str:
        return self.login

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(slots=True, eq=False)
class Group:
    id: str
    name: str
    description: str
    created: datetime
    last_updated: datetime
    last_membership_updated: datetime
    parent_id: str | None = None
    # role | facility | site_admin | malformed | plain
    kind: str = "plain"
    org_id: str | None = None
    role_name: str | None = None
    facility_id: str | None = None
    version: int = 0


@dataclass(slots=True, eq=False)
class Role:
    id: str
    name: str
    description: str


@dataclass(slots=True, eq=False)
class OrgMember:
    user_id: str
    role_ids: list[str]


@dataclass(slots=True, eq=False)
class Organization:
    id: str
    name: str
    display_name: str
    external_id: str
    created: datetime
    members: list[OrgMember] = field(default_factory=list)
    facility_ids: list[str] = field(default_factory=list)
    version: int = 0
