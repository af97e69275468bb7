"""The identity providers orgmig knows, by name, listed once: the CLI's `--provider` choices, the
tables' CHECK constraints and the export's registry (`app.idp.providers`, one client class per
name, checked against this list) take them from here. A module of its own so that a command that
only needs the names (`orgmig sync`, `orgmig reconcile`, the revisions) does not import the
export's HTTP client (about 0.1 s of start-up).

CAPABILITIES: what the identity contract's rules (app/steps/identity/rules.sql) need to know of
each provider, passed to them as bind parameters: the rules never branch on a provider's name."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

PROVIDERS: tuple[str, ...] = ("okta", "keycloak", "auth0")


@dataclass(frozen=True)
class Capabilities:
    # the provider's account status word -> the app's user status (DESIGN.md, "Status")
    status_map: dict[str, str]
    # an app user's keycloak_user_id is this provider's account id (matched by subject)
    matches_by_subject: bool
    # where an organization member's roles come from: 'membership' (roles per membership; a name
    # the role map does not know is unknown_role), 'user' (the user's realm roles; such a name
    # means nothing), None (no organizations: roles come from SimpleReport's groups only)
    roles_from: str | None
    # the provider has SimpleReport's SR-{ENV}-ADMINS group (is_site_admin is compared)
    has_site_admin_group: bool
    # a user created from an account gets keycloak_user_id = subject_prefix + the account's id
    subject_prefix: str
    # an organization created from the IdP is named by its description first (else its name)
    org_named_by_description: bool

    def params(self) -> dict:
        """As the bind parameters of the identity statements (:status_map as JSON)."""
        values = asdict(self)
        values["status_map"] = json.dumps(self.status_map)
        return values


CAPABILITIES: dict[str, Capabilities] = {
    "okta": Capabilities(
        status_map={"ACTIVE": "active", "RECOVERY": "active", "PASSWORD_EXPIRED": "active", "LOCKED_OUT": "active",
                    "STAGED": "pending", "PROVISIONED": "invited", "SUSPENDED": "disabled",
                    "DEPROVISIONED": "disabled"},
        matches_by_subject=False, roles_from=None, has_site_admin_group=True, subject_prefix="okta|",
        org_named_by_description=False),
    "keycloak": Capabilities(
        status_map={"enabled": "active", "disabled": "disabled"},
        matches_by_subject=True, roles_from="user", has_site_admin_group=True, subject_prefix="",
        org_named_by_description=False),
    "auth0": Capabilities(
        status_map={"active": "active", "blocked": "disabled"},
        matches_by_subject=False, roles_from="membership", has_site_admin_group=False, subject_prefix="",
        org_named_by_description=True),
}
assert set(CAPABILITIES) == set(PROVIDERS)
