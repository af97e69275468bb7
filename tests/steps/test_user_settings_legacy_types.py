"""Legacy tables that differ from the reference DDL: conversions follow the actual column type
and give the same instant whatever the time zones; verification compares instants; extra
columns are reported, never copied nowhere in silence; missing ones stop the run before it
writes."""

from __future__ import annotations

from sqlalchemy import text

from app.ops import migrations, verify
from app.ops.seed import seed_legacy
from tests.support.db import execute, fetch_all, scalar
from tests.support.migrate import run_alembic


def _failed(engine) -> dict[str, str]:
    return {c.check_name: c.detail for c in verify.run(engine) if not c.ok}


def _timestamptz_legacy(engine, alembic_cfg) -> None:
    """A later deployment: accepted_tos as timestamptz, on a database whose time zone is not UTC."""
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 600, seed=4)
    db = engine.url.database
    execute(engine, f"ALTER DATABASE \"{db}\" SET timezone = 'Asia/Kolkata'")
    execute(engine, "ALTER TABLE user_settings ALTER COLUMN accepted_tos TYPE timestamptz"
                    " USING accepted_tos AT TIME ZONE 'UTC'")


def test_a_timestamptz_legacy_column_keeps_its_instants_in_any_time_zone(engine, alembic_cfg):
    _timestamptz_legacy(engine, alembic_cfg)
    proc = run_alembic(engine.url, "upgrade", "0004", PGTZ="America/New_York")
    assert proc.returncode == 0, proc.stderr
    with engine.connect() as conn:
        moved = conn.execute(text("""
            SELECT count(*) FILTER (WHERE s.accepted_tos IS DISTINCT FROM us.accepted_tos),
                   count(*) FILTER (WHERE u.accepted_tos IS DISTINCT FROM us.accepted_tos),
                   count(*) FILTER (WHERE us.accepted_tos IS NOT NULL)
            FROM orgmig_user_settings_link l
            JOIN user_settings us ON us.id = l.user_settings_id
            JOIN settings s ON s.org_id = l.org_id JOIN "user" u ON u.id = l.user_id""")).one()
    assert moved[0] == 0 and moved[1] == 0 and moved[2] > 100
    assert _failed(engine) == {}


def test_verification_compares_instants_so_a_shifted_value_fails_it(engine, alembic_cfg):
    _timestamptz_legacy(engine, alembic_cfg)
    assert run_alembic(engine.url, "upgrade", "0004").returncode == 0
    # What a conversion through the wrong time zone leaves behind: every instant moved by 5:30.
    execute(engine, """UPDATE settings SET accepted_tos = accepted_tos - interval '5 hours 30 minutes'
                       WHERE accepted_tos IS NOT NULL""")
    failed = _failed(engine)
    assert "settings equal their legacy row, column for column" in failed
    assert failed["settings equal their legacy row, column for column"].split()[0].isdigit()


def test_an_extra_legacy_column_is_named_and_reported_before_the_first_batch(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 300, seed=5)
    execute(engine, "ALTER TABLE user_settings ADD COLUMN theme varchar DEFAULT 'dark'")
    proc = run_alembic(engine.url, "upgrade", "0004")
    assert proc.returncode == 0, proc.stderr
    assert "user_settings.theme (character varying) is not part of the data contract" in proc.stderr
    assert "legacy columns copied nowhere (reported): 1" in proc.stderr
    assert "1 unmapped_legacy_column" in proc.stderr
    report = dict(fetch_all(engine,
        "SELECT reason, detail FROM orgmig_report WHERE source_table = 'user_settings (column)'"))
    assert report == {"unmapped_legacy_column": {"column": "theme", "type": "character varying"}}
    assert _failed(engine) == {}
    # the verification catches a column nobody reported
    execute(engine, "DELETE FROM orgmig_report WHERE reason = 'unmapped_legacy_column'")
    assert "every legacy column copied or reported" in _failed(engine)


def test_a_missing_legacy_column_stops_the_run_before_it_writes(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 300, seed=6)
    execute(engine, "ALTER TABLE user_settings DROP COLUMN git_user_email")
    proc = run_alembic(engine.url, "upgrade", "0004")
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.startswith("alembic:")]
    assert len(lines) == 1 and "user_settings has no column git_user_email" in lines[0]
    assert "Traceback" not in proc.stderr
    assert scalar(engine, 'SELECT count(*) FROM "user"') == 0
    assert scalar(engine, "SELECT count(*) FROM orgmig_batch") == 0
    assert scalar(engine, "SELECT version_num FROM alembic_version") == "0003"
