"""Provider-neutral synthetic identity data, generated deterministically from a seed.

A `Tenant` holds users, groups, group memberships, roles and organizations in neutral terms
(user status uses Okta's vocabulary). Each fake server maps it into its provider's ids and JSON
shapes. `make_tenant(users, groups, seed)` always builds the same tenant for the same arguments,
including the awkward cases a migration must survive: unicode names, users with no email, users
in no group or in many groups, duplicate emails that differ only in case, DEPROVISIONED and
SUSPENDED users, SimpleReport-style group names (well-formed and malformed), users whose facility
group belongs to another organization.

Tests change the data through the `Tenant` methods (`touch_user`, `set_status`, `add_user`,
`add_member`, ...): they bump `last_updated`/`last_membership_updated` and the version counters
the fakes use to refresh their caches.

Modules: `records` (the record types and shared vocabulary), `state` (`Tenant` and its changes),
`generator` (`make_tenant`) and `vocabulary` (what the generator draws from).
"""

from .generator import make_tenant
from .records import (
    ORG_ROLE_NAMES,
    REFERENCE_NOW,
    SITE_ADMIN_ROLE,
    STATUSES,
    Group,
    Organization,
    OrgMember,
    Role,
    User,
    utcnow,
)
from .state import Tenant

__all__ = [
    "ORG_ROLE_NAMES", "REFERENCE_NOW", "SITE_ADMIN_ROLE", "STATUSES", "Group", "OrgMember", "Organization", "Role",
    "Tenant", "User", "make_tenant", "utcnow",
]
