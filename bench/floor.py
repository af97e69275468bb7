"""The floor for revision 0004: the contract's rows written the plainest way, with nothing else.

One INSERT ... SELECT chain (a statement of data-modifying CTEs: org, "user", org_user,
settings) per half of user_settings' key range, the two halves in two database sessions at
once, one transaction each: no batches, no ledger, no links, no reported rows, no undo records,
no steering. What the engine adds over that (resume, exact downgrade, reports, pacing) is the
ratio of its rate to this one. The same rows as the revision writes for a database with no
migrated users: per legacy row with a valid keycloak_user_id that no later row shares, a
personal org (a time-ordered id, as the revision makes them), a user, an admin membership, the
org's settings. Sessions run with TimeZone UTC (a naive legacy timestamp holds UTC) and JIT off,
as the revision's batches do.

    from floor import time_floor
    floor = time_floor(url)          # on a database at 0003 with legacy rows
    floor.rate                       # legacy rows a second, wall clock of the two sessions
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import psycopg
from sqlalchemy.engine import URL

from app.ops.databases import libpq
from app.schema import SETTINGS_COLUMNS

SESSIONS = 2

CHAIN = """
WITH src AS MATERIALIZED (
    SELECT us.*,
           encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
               placing substring(int8send(floor(extract(epoch FROM clock_timestamp())
               * 1000)::bigint) FROM 3) FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid AS org_id,
           nextval(pg_get_serial_sequence('"user"', 'id'))::integer AS user_id
    FROM user_settings us
    WHERE us.id BETWEEN %(lo)s AND %(hi)s
      AND us.keycloak_user_id ~ '[^[:space:]]'
      AND NOT EXISTS (SELECT 1 FROM user_settings w
                      WHERE w.keycloak_user_id = us.keycloak_user_id AND w.id > us.id)
),
ins_org AS (
    INSERT INTO org (id, name) SELECT s.org_id, 'user_' || s.id || '_org' FROM src s
),
ins_user AS (
    INSERT INTO "user" (id, keycloak_user_id, legacy_user_settings_id, current_org_id, status,
                        email, email_verified, accepted_tos, enable_sound_notifications)
    SELECT s.user_id, s.keycloak_user_id, s.id, s.org_id, 'active', s.email, s.email_verified,
           CAST(s.accepted_tos AS timestamptz), s.enable_sound_notifications
    FROM src s
),
ins_member AS (
    INSERT INTO org_user (org_id, user_id, role_id, status)
    SELECT s.org_id, s.user_id, (SELECT id FROM role WHERE name = 'admin'), 'active' FROM src s
),
ins_settings AS (
    INSERT INTO settings (org_id, {columns}) SELECT s.org_id, {values} FROM src s
)
SELECT count(*) FROM src
""".format(columns=", ".join(SETTINGS_COLUMNS), values=", ".join(f"s.{c}" for c in SETTINGS_COLUMNS))

ROLES = "INSERT INTO role (name, rank) VALUES ('admin', 1), ('user', 1000) ON CONFLICT (name) DO NOTHING"


@dataclass
class Floor:
    rows: int  # legacy rows in the key range (migrated or not)
    migrated: int  # users written
    seconds: float  # wall clock, from both sessions connected to both committed
    client_cpu: float = 0.0  # CPU seconds of the two client threads (psycopg, sending and waiting)
    waits: object = None  # harness.sessions.Sessions, when sampled

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def halves(lo: int, hi: int, parts: int = SESSIONS) -> list[tuple[int, int]]:
    """[lo, hi] cut into `parts` adjacent ranges of (nearly) equal width."""
    step = (hi - lo + 1) / parts
    edges = [lo + round(i * step) for i in range(parts)] + [hi + 1]
    return [(edges[i], edges[i + 1] - 1) for i in range(parts)]


def time_floor(url: URL, sampler=None) -> Floor:
    """The contract's rows for every legacy row of the database at `url` (at 0003, none migrated),
    one chain per half of the key range in two sessions at once. `sampler` (a
    harness.sessions.SessionWaits), when given, samples the two sessions while they run."""
    conninfo = libpq(url)
    options = "-c jit=off -c TimeZone=UTC"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(ROLES)
        rows, lo, hi = conn.execute("SELECT count(*), min(id), max(id) FROM user_settings").fetchone()
    sessions = [psycopg.connect(conninfo, options=options) for _ in range(SESSIONS)]
    counts: list[int] = []
    errors: list[BaseException] = []
    cpu: list[float] = []

    def chain(conn: psycopg.Connection, lo: int, hi: int) -> None:
        try:
            counts.append(conn.execute(CHAIN, {"lo": lo, "hi": hi}).fetchone()[0])
            conn.commit()
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
            errors.append(exc)
        finally:
            cpu.append(time.thread_time())

    try:
        threads = [threading.Thread(target=chain, args=(conn, a, b))
                   for conn, (a, b) in zip(sessions, halves(lo or 0, hi or 0), strict=True)]
        if sampler is not None:
            sampler.start()
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - started
    finally:
        waits = sampler.stop() if sampler is not None and sampler.is_alive() else None
        for conn in sessions:
            conn.close()
    if errors:
        raise errors[0]
    if waits is not None:
        waits.client_cpu, waits.client = sum(cpu), "the two client threads"
    return Floor(rows, sum(counts), seconds, sum(cpu), waits)
