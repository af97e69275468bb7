"""What a provider client hands the export loop: one page of one stream.

A stream is one paged listing (all users, the members of one group, ...), named so that a
resumed export can rebuild it from its name alone. Each page carries normalised rows, the cursor
of the next page (None when the stream is finished) and the names of streams it discovered (the
members of each group on a page of groups).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass
class Page:
    endpoint: str
    next_cursor: str | None
    users: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    members: list[dict[str, Any]] = field(default_factory=list)
    spawn: list[str] = field(default_factory=list)
    # Ids of the listing's items, to notice a page sequence that repeats itself.
    item_ids: list[str] = field(default_factory=list)
    # Items this page read, whether or not they became rows (progress and checkpoint counts).
    items: int | None = None

    @property
    def count(self) -> int:
        return self.items if self.items is not None else len(self.item_ids)

    @property
    def empty(self) -> bool:
        """A page of a listing that came back with no items (a page that stands for a step, as
        the start of Auth0's export job, counts `items` itself and is never `empty`)."""
        return self.items is None and not self.item_ids and not (self.users or self.groups or self.members
                                                                 or self.spawn)


@dataclass
class Stream:
    name: str
    fetch: Callable[[str | None], Awaitable[Page]]
    # (kind, group id): when the stream finishes, memberships of that group it did not see go.
    members_of: tuple[str, str] | None = None


def user_row(
    external_id: str,
    *,
    status: str,
    raw: dict,
    login: str | None = None,
    email: str | None = None,
    email_verified: bool | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    created: str | None = None,
    updated: str | None = None,
    attributes: dict | None = None,
) -> dict[str, Any]:
    return {
        "external_id": str(external_id),
        "login": login,
        "email": email,
        "email_verified": email_verified,
        "first_name": first_name,
        "last_name": last_name,
        "status": status,
        "idp_created_at": created,
        "idp_updated_at": updated,
        "attributes": attributes or {},
        "raw": raw,
    }


def group_row(
    kind: str,
    external_id: str,
    name: str,
    *,
    raw: dict,
    description: str | None = None,
    group_type: str | None = None,
    parent_external_id: str | None = None,
    attributes: dict | None = None,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "external_id": str(external_id),
        "name": name,
        "description": description,
        "group_type": group_type,
        "parent_external_id": parent_external_id,
        "attributes": attributes or {},
        "raw": raw,
    }


def member_row(kind: str, group_external_id: str, user_external_id: str, attributes: dict | None = None) -> dict:
    return {
        "kind": kind,
        "group_external_id": str(group_external_id),
        "user_external_id": str(user_external_id),
        "attributes": attributes or {},
    }


def utc_millis(value: datetime) -> str:
    """A time as the providers' filters take it: UTC, milliseconds, `Z` (2025-01-31T00:00:00.000Z)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def epoch_ms_to_iso(value: Any) -> str | None:
    """Keycloak's millisecond timestamps as ISO 8601 in UTC."""
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC).isoformat()
    except (TypeError, ValueError, OverflowError):
        return None
