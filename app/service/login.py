"""Who the caller means, migrated or linked now: a legacy keycloak_user_id through the login path
(app.migrate_user), or an identity-provider account through its link, made now only where the
identity contract's rules allow it (docs/identity.md, "Matching an account to an app user").

The email rule is the identity step's own statement (state.sql, `match`), run for this one
account: the one app user holding the email, where the provider marks it verified, no other
account of the provider holds it in the latest export, and no other account is linked to that
user already. Anything else links nothing and is reported (step `login:<provider>`) with the
contract's reason. At login one more case is refused: for Keycloak, a user whose keycloak_user_id
names another Keycloak account (which the snapshot may not have yet) is that account's."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Connection, text

from app.provider_names import CAPABILITIES
from app.steps.identity import SQL as IDENTITY_SQL
from app.steps.user_settings.login import migrate_user

LINKED = text("""SELECT u.id, u.current_org_id FROM user_identity i JOIN "user" u ON u.id = i.user_id
                 WHERE i.provider = :p AND i.external_id = :x""")
# The account as the caller gives it, its email and verification taken by the sync's own rule
# (rules.account_values: trimmed, compared lower-cased, unverified unless the provider says so).
ACCOUNT = text(IDENTITY_SQL.expand("""
INSERT INTO batch_account (row_id, external_id, email, email_norm, email_verified, site_admin)
SELECT coalesce((SELECT row_id FROM idp_user WHERE provider = :p AND external_id = :x), 0),
       :x, a.email, a.email_norm, a.email_verified, false
FROM (SELECT CAST(:e AS text) AS email, CAST(:v AS boolean) AS email_verified, CAST(NULL AS text) AS status,
             CAST(NULL AS text) AS first_name, CAST(NULL AS text) AS last_name) u
CROSS JOIN LATERAL (SELECT {account_values}) a"""))
MATCHED = text("""SELECT b.row_id, b.user_id, b.matched_by, b.problem, b.detail, u.current_org_id, u.keycloak_user_id,
                         (SELECT min(c.id) FROM "user" c WHERE lower(btrim(c.email)) = b.email_norm) AS candidate
                  FROM batch_account b LEFT JOIN "user" u ON u.id = b.user_id""")
LINK = text("""INSERT INTO user_identity (provider, external_id, user_id, matched_by)
               VALUES (:p, :x, :u, :m) ON CONFLICT DO NOTHING""")
REPORT = text("""INSERT INTO orgmig_report (step, source_table, source_id, reason, migrated, detail)
                 VALUES (:step, :table, :id, :reason, false, CAST(:detail AS jsonb))
                 ON CONFLICT (step, source_table, source_id, reason)
                 DO UPDATE SET detail = EXCLUDED.detail, created_at = now()""")


@dataclass(frozen=True)
class Answer:
    app_user_id: int
    org_id: str | None
    migrated_now: bool


@dataclass(frozen=True)
class Refused:
    """No link: 404 (nothing may be linked) or 409 (the user is another account's), with the
    contract's reason."""
    status: int
    reason: str
    message: str


NO_USER = Refused(404, "idp_user_without_app_user", "no user to migrate or link for this identity")
TAKEN = Refused(409, "email_ambiguous", "the app user holding this email belongs to another account")
MESSAGES = {"email_unverified": "the provider does not mark this email verified: nothing is linked by it",
            "email_ambiguous": "this email is held by several app users or several accounts: nothing is linked"}


def _answer(user_id: int, org_id, migrated_now: bool) -> Answer:
    return Answer(user_id, str(org_id) if org_id else None, migrated_now)


def by_keycloak_id(conn: Connection, keycloak_user_id: str) -> Answer | None:
    found = migrate_user(conn, keycloak_user_id)
    return None if found is None else _answer(found.user_id, found.org_id, found.migrated_now)


def _linked(conn: Connection, provider: str, external_id: str) -> Answer | None:
    with conn.begin():
        row = conn.execute(LINKED, {"p": provider, "x": external_id}).first()
    return None if row is None else _answer(row.id, row.current_org_id, False)


def _names_another(keycloak_user_id: str | None, external_id: str) -> bool:
    """The user's keycloak_user_id is another Keycloak account's id (not one orgmig gave a user it
    created from another provider's account, `okta|...`, `auth0|...`)."""
    return bool(keycloak_user_id) and keycloak_user_id != external_id and "|" not in keycloak_user_id


def _link(conn: Connection, provider: str, external_id: str, answer: Answer, matched_by: str) -> Answer | Refused:
    conn.execute(LINK, {"p": provider, "x": external_id, "u": answer.app_user_id, "m": matched_by})
    linked = conn.execute(LINKED, {"p": provider, "x": external_id}).first()
    if linked is None or linked.id != answer.app_user_id:
        return TAKEN  # linked to another account of this provider meanwhile: not this caller's
    return answer


def _by_match(conn: Connection, provider: str, external_id: str, email: str | None,
              email_verified: bool) -> Answer | Refused:
    """The identity step's match for this one account (for Keycloak the user its id names, else the
    email rule), in one transaction with the link it makes or the report it writes."""
    by_subject = CAPABILITIES[provider].matches_by_subject
    if not by_subject and (not email or not email.strip()):
        return NO_USER
    with conn.begin():
        conn.exec_driver_sql(IDENTITY_SQL.source("state.temp_tables"))
        conn.execute(ACCOUNT, {"p": provider, "x": external_id, "e": email, "v": email_verified,
                               "status_map": CAPABILITIES[provider].params()["status_map"]})
        conn.execute(IDENTITY_SQL("state.match"), {"provider": provider, "run_id": None,
                                                    **CAPABILITIES[provider].params()})
        m = conn.execute(MATCHED).one()
        refused: Refused | None = None
        if m.user_id is not None:
            if m.matched_by == "email" and by_subject and _names_another(m.keycloak_user_id, external_id):
                refused = TAKEN
            else:
                return _link(conn, provider, external_id, _answer(m.user_id, m.current_org_id, False),
                             m.matched_by)
        elif m.problem in MESSAGES:
            taken = (m.detail or {}).get("linked_elsewhere") and (m.detail or {}).get("app_users") == 1 \
                and (m.detail or {}).get("accounts") == 1
            refused = TAKEN if taken else Refused(404, m.problem, MESSAGES[m.problem])
        if refused is None or m.candidate is None:
            return refused or NO_USER
        table, source = ("idp_user", m.row_id) if m.row_id else ("user", m.candidate)
        detail = {**(m.detail or {}), "external_id": external_id}
        conn.execute(REPORT, {"step": f"login:{provider}", "table": table, "id": source, "reason": refused.reason,
                              "detail": json.dumps(detail)})
        return refused


def by_account(conn: Connection, provider: str, external_id: str, email: str | None,
               email_verified: bool = False) -> Answer | Refused:
    """The app user of an IdP account: its link; else (and then linked) for Keycloak the user the
    subject names (its legacy row migrated now); else the user the email rule gives."""
    answer = _linked(conn, provider, external_id)
    if answer is not None:
        return answer
    if CAPABILITIES[provider].matches_by_subject:
        answer = by_keycloak_id(conn, external_id)
        if answer is not None:
            with conn.begin():
                return _link(conn, provider, external_id, answer, "subject")
    return _by_match(conn, provider, external_id, email, email_verified)
