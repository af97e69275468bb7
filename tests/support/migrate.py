"""Helpers for the data-revision tests: run alembic as a deploy pipeline does, read outcomes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from app.db import make_engine
from app.ops import migrations, verify
from app.ops.databases import libpq

ROOT = Path(__file__).resolve().parents[2]

# One row per migrated legacy row, with everything a person would compare, and no generated
# keys (ids, uuids, timestamps of creation), so two databases can be compared.
CANONICAL = """
SELECT md5(string_agg(row_text, E'\\n' ORDER BY sid)), count(*)
FROM (
    SELECT l.user_settings_id AS sid,
           concat_ws('|', l.user_settings_id, u.keycloak_user_id, u.legacy_user_settings_id, u.status,
                     u.email, u.email_verified, u.accepted_tos, u.enable_sound_notifications,
                     o.name, r.name, m.status, l.created_user, l.created_org, l.created_org_user,
                     l.created_settings, l.filled_user_columns,
                     md5((to_jsonb(s) - 'id' - 'org_id' - 'created_at' - 'updated_at')::text)) AS row_text
    FROM orgmig_user_settings_link l
    JOIN "user" u ON u.id = l.user_id
    JOIN org o ON o.id = l.org_id
    JOIN org_user m ON m.org_id = l.org_id AND m.user_id = l.user_id
    JOIN role r ON r.id = m.role_id
    JOIN settings s ON s.org_id = l.org_id
) t
"""

REPORTS = """
SELECT md5(string_agg(concat_ws('|', source_id, reason, migrated, detail::text), E'\\n'
                      ORDER BY source_id, reason)), count(*)
FROM orgmig_report WHERE step = 'user_settings_to_org'
"""

COUNTS = """
SELECT (SELECT count(*) FROM "user"), (SELECT count(*) FROM org), (SELECT count(*) FROM org_user),
       (SELECT count(*) FROM settings), (SELECT count(*) FROM role),
       (SELECT count(*) FROM orgmig_user_settings_link)
"""


def outcome(engine: Engine) -> dict:
    """What the migration produced, independent of generated keys and timing."""
    with engine.connect() as conn:
        return {
            "canonical": tuple(conn.execute(text(CANONICAL)).one()),
            "reports": tuple(conn.execute(text(REPORTS)).one()),
            "counts": tuple(conn.execute(text(COUNTS)).one()),
        }


def url_string(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def alembic_env(url: URL, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORGMIG_")}
    env["DATABASE_URL"] = url_string(url)
    env.update(extra)
    return env


def alembic_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), *args]


def start_alembic(url: URL, *args: str, stdout: int = subprocess.DEVNULL, stderr: int = subprocess.PIPE,
                  **env: str) -> subprocess.Popen:
    """`alembic -c alembic.ini ARGS` started in a process of its own (text; stderr piped unless
    told otherwise), as a deploy pipeline runs it; the caller waits for it or stops it."""
    return subprocess.Popen(alembic_cmd(*args), cwd=ROOT, env=alembic_env(url, **env), stdout=stdout, stderr=stderr,
                            text=True)


def run_alembic(url: URL, *args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(alembic_cmd(*args), cwd=ROOT, env=alembic_env(url, **env),
                          capture_output=True, text=True, timeout=timeout)


def orgmig(url: URL, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT,
                          env=alembic_env(url, **env), capture_output=True, text=True, timeout=timeout)


def outcome_from_scratch(pg_server, engine: Engine, target: str = "0004") -> dict:
    """What migrating `engine`'s user_settings as it is now in one go gives: the table copied into
    a fresh database, upgraded there to `target`."""
    reference = pg_server.create("orgmig_ref")
    ref = make_engine(reference, poolclass=NullPool)
    try:
        migrations.upgrade(migrations.alembic_config(reference), "0003")
        with psycopg.connect(libpq(engine.url)) as src, psycopg.connect(libpq(reference)) as dst:
            with src.cursor().copy("COPY user_settings TO STDOUT (FORMAT binary)") as out, \
                    dst.cursor().copy("COPY user_settings FROM STDIN (FORMAT binary)") as into:
                for chunk in out:
                    into.write(chunk)
        done = run_alembic(reference, "upgrade", target)
        assert done.returncode == 0, done.stderr
        return outcome(ref)
    finally:
        ref.dispose()
        pg_server.drop(reference)


def failed_checks(engine: Engine) -> list[str]:
    """Every failed check of the applied revisions' verification files, as `revision name: detail`."""
    return [f"{c.revision} {c.check_name}: {c.detail}" for c in verify.run(engine) if not c.ok]
