"""The application's data: a template database at revision 0003 with seeded legacy rows and some
users migrated as the application migrates them at login, and who the traffic picks from."""

from __future__ import annotations

import random

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from app.batch import LAST_KEY
from app.db import make_engine
from app.ops.databases import Server
from app.steps.roles import ensure_roles
from app.steps.user_settings import ROLES, SQL, STEP

from .report import say
from .server import prepare
from .traffic import Workload


def premigrate(url: URL, count: int) -> None:
    """`count` users migrated as the application migrates them at login (the login path's statement
    over their legacy rows), before any upgrade: the application's users in the new tables."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            total = conn.execute(text("SELECT max(id) FROM user_settings")).scalar_one()
            step = max(1, total // count)
            keys = list(conn.execute(text(
                "SELECT keycloak_user_id FROM user_settings WHERE id % :m = :m / 2"
                " AND keycloak_user_id ~ '[^[:space:]]' ORDER BY id LIMIT :n"), {"m": step, "n": count}).scalars())
            conn.commit()
            for i in range(0, len(keys), 500):
                with conn.begin():
                    for name, value in STEP.batch_settings.items():
                        conn.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})
                    ensure_roles(conn, STEP.name, ROLES, warn=False)
                    sequence = conn.execute(SQL("run.user_id_sequence")).scalar_one()
                    ids = list(conn.execute(text(
                        "SELECT id FROM user_settings WHERE keycloak_user_id = ANY (:k) ORDER BY id"),
                        {"k": keys[i:i + 500]}).scalars())
                    STEP.migrate(conn, min(ids), max(ids), LAST_KEY, None, sequence, ids=ids)
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text('VACUUM (ANALYZE) role, org, "user", org_user, settings, orgmig_user_settings_link,'
                              " orgmig_report"))
    finally:
        engine.dispose()


def workload(url: URL, users: int, rate: float, login_rate: float, seed: int) -> Workload:
    """Who the application's transactions pick from: a sample of legacy rows, the migrated users,
    and users not yet migrated (winners of their keycloak_user_id) in a seeded random order."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            every = max(1, users // 50_000)
            legacy = [tuple(r) for r in conn.execute(text(
                "SELECT id, keycloak_user_id FROM user_settings WHERE id % :m = 0"
                " AND keycloak_user_id ~ '[^[:space:]]' ORDER BY id"), {"m": every})]
            migrated = [(r[0], r[1], str(r[2])) for r in conn.execute(text(
                'SELECT id, keycloak_user_id, current_org_id FROM "user" ORDER BY id'))]
            every = max(1, users // 20_000)
            fresh = list(conn.execute(text(
                "SELECT us.keycloak_user_id FROM user_settings us WHERE us.id % :m = :m - 1"
                " AND us.keycloak_user_id ~ '[^[:space:]]'"
                " AND NOT EXISTS (SELECT 1 FROM orgmig_user_settings_link l WHERE l.user_settings_id = us.id)"
                " AND NOT EXISTS (SELECT 1 FROM user_settings w WHERE w.keycloak_user_id = us.keycloak_user_id"
                "                 AND w.id > us.id) ORDER BY us.id"), {"m": every}).scalars())
    finally:
        engine.dispose()
    random.Random(seed).shuffle(fresh)
    return Workload(url.render_as_string(hide_password=False), rate, login_rate, legacy, migrated, fresh, seed)


def build_template(server: Server, name: str, users: int, seed: int, reuse: bool) -> None:
    if reuse and server.exists(name):
        say(f"using the existing template {name}")
        return
    say(f"seeding {users:,} legacy users into {name}")
    url = server.create(name, replace=True)
    seeded = prepare(url, users, seed)
    count = min(5_000, max(1, users // 20))
    say(f"seeded in {seeded.seconds:.1f} s; migrating {count:,} users as the login path does")
    premigrate(url, count)

