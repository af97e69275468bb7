"""Who the caller means, migrated or linked now: a legacy keycloak_user_id through the login path
(app.migrate_user), or an identity-provider account through its link, made now where the
contract's rules allow it (a Keycloak subject; the one app user holding the email)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from app.steps.user_settings.login import migrate_user

LINKED = text("""SELECT u.id, u.current_org_id FROM user_identity i JOIN "user" u ON u.id = i.user_id
                 WHERE i.provider = :p AND i.external_id = :x""")
BY_EMAIL = text("""SELECT id, current_org_id FROM "user" WHERE lower(btrim(email)) = lower(btrim(:e)) LIMIT 2""")
LINK = text("""INSERT INTO user_identity (provider, external_id, user_id, matched_by)
               VALUES (:p, :x, :u, :m) ON CONFLICT DO NOTHING""")


@dataclass(frozen=True)
class Answer:
    app_user_id: int
    org_id: str | None
    migrated_now: bool


def by_keycloak_id(conn: Connection, keycloak_user_id: str) -> Answer | None:
    found = migrate_user(conn, keycloak_user_id)
    return None if found is None else Answer(found.user_id, str(found.org_id), found.migrated_now)


def by_account(conn: Connection, provider: str, external_id: str, email: str | None) -> Answer | None:
    """The app user of an IdP account: its link, else (and then linked) for Keycloak the user the
    subject names (its legacy row migrated now), else the one user holding the email."""
    with conn.begin():
        row = conn.execute(LINKED, {"p": provider, "x": external_id}).first()
    if row is not None:
        return Answer(row.id, str(row.current_org_id) if row.current_org_id else None, False)
    matched_by, answer = None, None
    if provider == "keycloak":
        answer, matched_by = by_keycloak_id(conn, external_id), "subject"
    if answer is None and email and email.strip():
        with conn.begin():
            rows = conn.execute(BY_EMAIL, {"e": email}).all()
        if len(rows) == 1:
            r = rows[0]
            answer, matched_by = Answer(r.id, str(r.current_org_id) if r.current_org_id else None, False), "email"
    if answer is None:
        return None
    with conn.begin():
        conn.execute(LINK, {"p": provider, "x": external_id, "u": answer.app_user_id, "m": matched_by})
        linked = conn.execute(LINKED, {"p": provider, "x": external_id}).first()
    if linked is None or linked.id != answer.app_user_id:
        return None  # the user is linked to another account of this provider: not this caller's
    return answer
