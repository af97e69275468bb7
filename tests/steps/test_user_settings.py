"""Revision 0004 against a real PostgreSQL: every legacy row migrated or reported, idempotent,
reversible exactly, verifiable, and silent about secrets (resumable after SIGKILL:
test_user_settings_interrupted.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.batch import Options, run_step
from app.ops import migrations, verify
from app.ops.seed import seed_legacy
from app.steps.user_settings import STEP
from tests.support.db import execute, fetch_all, scalar, table_md5
from tests.support.migrate import failed_checks, orgmig, outcome, run_alembic

SEED_GUIDE_QUERIES = [
    "SELECT * FROM role ORDER BY rank",
    'SELECT COUNT(*) FROM "user"',
    "SELECT COUNT(*) FROM user_settings WHERE keycloak_user_id IS NOT NULL",
    "SELECT COUNT(*) FROM org",
    "SELECT COUNT(*) FROM org_user",
    "SELECT COUNT(*) FROM settings",
    """SELECT
    u.keycloak_user_id,
    o.name as org_name,
    r.name as role_name,
    ou.status,
    s.language,
    s.agent
FROM "user" u
JOIN org_user ou ON u.id = ou.user_id
JOIN org o ON ou.org_id = o.id
JOIN role r ON ou.role_id = r.id
LEFT JOIN settings s ON s.org_id = o.id
LIMIT 5""",
    """SELECT
    (SELECT COUNT(*) FROM user_settings WHERE keycloak_user_id IS NOT NULL) as original_users,
    (SELECT COUNT(*) FROM "user") as migrated_users,
    (SELECT COUNT(*) FROM org) as created_orgs,
    (SELECT COUNT(*) FROM settings) as migrated_settings""",
    """SELECT COUNT(*) FROM org_user ou
LEFT JOIN "user" u ON ou.user_id = u.id
WHERE u.id IS NULL""",
    """SELECT r.name, COUNT(*) as user_count
FROM org_user ou
JOIN role r ON ou.role_id = r.id
GROUP BY r.name""",
]


@pytest.fixture
def seeded(engine, alembic_cfg):
    """A deployment before orgmig: the legacy table with 3,000 rows of every awkward kind."""
    migrations.upgrade(alembic_cfg, "0003")
    summary = seed_legacy(engine, 3000, seed=11)
    return engine, summary


def _secrets(engine) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT llm_api_key, llm_api_key_for_byor, search_api_key, sandbox_api_key FROM user_settings"
        )).all()
    return {v for row in rows for v in row if v and len(v) >= 8}


def test_upgrade_migrates_or_reports_every_row(seeded, alembic_cfg):
    engine, summary = seeded
    legacy_before = table_md5(engine, "user_settings")
    migrations.upgrade(alembic_cfg, "0004")
    assert table_md5(engine, "user_settings") == legacy_before  # the source is never modified
    assert scalar(engine, "SELECT count(*) FROM orgmig_user_settings_link") == summary.migratable
    assert scalar(engine, 'SELECT count(*) FROM "user"') == summary.migratable
    assert scalar(engine, "SELECT count(*) FROM org WHERE name ~ '^user_[0-9]+_org$'") == summary.migratable
    reasons = dict(fetch_all(engine,
        "SELECT reason, count(*) FROM orgmig_report GROUP BY reason"))
    assert reasons == {
        "missing_keycloak_user_id": summary.null_keycloak_id + summary.empty_keycloak_id + summary.blank_keycloak_id,
        "duplicate_keycloak_user_id": summary.duplicate_losers,
    }
    # Each losing duplicate names the row that won: the highest id sharing its keycloak id.
    wrong = scalar(engine, """
        SELECT count(*) FROM orgmig_report r JOIN user_settings us ON us.id = r.source_id
        WHERE r.reason = 'duplicate_keycloak_user_id'
          AND (r.detail->>'winner_id')::int <> (SELECT max(id) FROM user_settings w
                                                 WHERE w.keycloak_user_id = us.keycloak_user_id)""")
    assert wrong == 0
    assert failed_checks(engine) == []
    # The personal org's settings carry every legacy column, the same value.
    same = scalar(engine, """
        SELECT count(*) FROM orgmig_user_settings_link l
        JOIN user_settings us ON us.id = l.user_settings_id JOIN settings s ON s.org_id = l.org_id
        WHERE s.llm_api_key IS NOT DISTINCT FROM us.llm_api_key
          AND s.mcp_config::text IS NOT DISTINCT FROM us.mcp_config::text
          AND s.billing_margin IS NOT DISTINCT FROM us.billing_margin
          AND s.accepted_tos IS NOT DISTINCT FROM (us.accepted_tos AT TIME ZONE 'UTC')""")
    assert same == summary.migratable
    assert scalar(engine, "SELECT count(*) FROM role WHERE (name, rank) IN (('admin', 1), ('user', 1000))") == 2


def test_seed_guide_verification_queries_run_unchanged(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    execute(engine, """INSERT INTO user_settings (keycloak_user_id, language, agent)
                       SELECT 'kc-' || g, 'en', 'CodeActAgent' FROM generate_series(1, 1200) g""")
    migrations.upgrade(alembic_cfg, "0004")
    with engine.connect() as conn:
        results = [conn.execute(text(q)).all() for q in SEED_GUIDE_QUERIES]
    assert [tuple(r) for r in results[0]] [0][1:] == ("admin", 1)
    assert results[1][0][0] == results[2][0][0] == 1200  # "These counts should match"
    assert results[3][0][0] == results[4][0][0] == results[5][0][0] == 1200
    assert len(results[6]) == 5 and all(row.role_name == "admin" and row.status == "active" for row in results[6])
    assert tuple(results[7][0]) == (1200, 1200, 1200, 1200)
    assert results[8][0][0] == 0
    assert [tuple(r) for r in results[9]] == [("admin", 1200)]


def test_rerun_after_success_changes_nothing(seeded, alembic_cfg):
    engine, _ = seeded
    migrations.upgrade(alembic_cfg, "0004")
    before = outcome(engine)
    result = run_step(engine, STEP, "upgrade", Options.from_settings(progress_bar=False))
    assert result.rows_done_now == 0
    assert outcome(engine) == before
    proc = run_alembic(engine.url, "upgrade", "head")
    assert proc.returncode == 0, proc.stderr
    assert outcome(engine) == before


def test_rows_added_after_a_finished_run_are_picked_up_by_the_next(seeded, alembic_cfg):
    engine, summary = seeded
    migrations.upgrade(alembic_cfg, "0004")
    execute(engine, "INSERT INTO user_settings (keycloak_user_id) VALUES ('late-1'), ('late-2'), (NULL)")
    result = run_step(engine, STEP, "upgrade", Options.from_settings(progress_bar=False))
    assert result.rows_done_now == 3
    assert scalar(engine, "SELECT count(*) FROM orgmig_user_settings_link") == summary.migratable + 2
    assert failed_checks(engine) == []


def _premigrate(engine):
    """The application migrated some users at login before the upgrade ran."""
    execute(engine, "INSERT INTO role (name, rank) VALUES ('admin', 1), ('user', 1000)")
    execute(engine, """
        INSERT INTO user_settings (id, keycloak_user_id, language, email, llm_model, accepted_tos)
        OVERRIDING SYSTEM VALUE VALUES
          (900001, 'app-complete', 'en', 'a@example.com', 'gpt', '2024-01-01 00:00'),
          (900002, 'app-user-only', 'fr', 'legacy@example.com', 'claude', '2024-02-02 10:00'),
          (900003, 'app-other-settings', 'de', NULL, 'claude', NULL)""")
    execute(engine, """
        WITH o AS (INSERT INTO org (name) VALUES ('user_900001_org'), ('user_900003_org') RETURNING id, name)
        INSERT INTO "user" (keycloak_user_id, email, current_org_id)
        SELECT 'app-complete', 'a@example.com', id FROM o WHERE name = 'user_900001_org'
        UNION ALL SELECT 'app-user-only', 'app@example.com', NULL
        UNION ALL SELECT 'app-other-settings', NULL, id FROM o WHERE name = 'user_900003_org'""")
    execute(engine, """
        INSERT INTO org_user (org_id, user_id, role_id, status)
        SELECT o.id, u.id, (SELECT id FROM role WHERE name = 'admin'), 'active'
        FROM org o JOIN "user" u ON o.id = u.current_org_id""")
    execute(engine, """
        INSERT INTO settings (org_id, email, language, llm_model, accepted_tos)
        SELECT o.id, CASE o.name WHEN 'user_900001_org' THEN 'a@example.com' END,
               CASE o.name WHEN 'user_900001_org' THEN 'en' ELSE 'es' END,
               CASE o.name WHEN 'user_900001_org' THEN 'gpt' ELSE 'claude' END,
               CASE o.name WHEN 'user_900001_org' THEN timestamptz '2024-01-01 00:00+00' END
        FROM org o""")


def test_users_already_migrated_by_the_app_are_linked_never_overwritten(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 500, seed=3)
    _premigrate(engine)
    app_user_before = table_md5(engine, '"user"')
    migrations.upgrade(alembic_cfg, "0004")
    links = {r.user_settings_id: r for r in fetch_all(engine,
        "SELECT * FROM orgmig_user_settings_link WHERE user_settings_id > 900000")}
    assert set(links) == {900001, 900002, 900003}
    assert not any(link.created_user for link in links.values())
    assert [links[i].created_org for i in (900001, 900002, 900003)] == [False, True, False]
    assert [links[i].created_settings for i in (900001, 900002, 900003)] == [False, True, False]
    assert links[900002].filled_user_columns == [
        "accepted_tos", "enable_sound_notifications", "legacy_user_settings_id", "current_org_id"]
    # What the app wrote stays: the email the app holds is not replaced by the legacy one.
    assert scalar(engine, """SELECT email FROM "user" WHERE keycloak_user_id = 'app-user-only'""") == "app@example.com"
    assert scalar(engine, """SELECT s.language FROM settings s JOIN org o ON o.id = s.org_id
                             WHERE o.name = 'user_900003_org'""") == "es"
    notes = {(r.source_id, r.reason): r.detail for r in fetch_all(engine,
        "SELECT source_id, reason, detail FROM orgmig_report WHERE migrated")}
    assert notes == {
        (900002, "user_differs"): {"table": "user", "columns": ["email"]},
        (900003, "settings_differ"): {"table": "settings", "columns": ["language"]},
    }
    assert failed_checks(engine) == []
    # Downgrade restores the app's rows byte for byte and removes only what the migration made.
    migrations.downgrade(alembic_cfg, "0003")
    assert table_md5(engine, '"user"') == app_user_before
    assert scalar(engine, "SELECT count(*) FROM org") == 2
    assert scalar(engine, "SELECT count(*) FROM settings") == 2
    assert scalar(engine, "SELECT count(*) FROM role") == 2  # the app created them; they stay


def test_downgrade_removes_exactly_what_it_created(seeded, alembic_cfg):
    engine, _ = seeded
    before = {t: table_md5(engine, t, order_by="1") for t in ('"user"', "org", "org_user", "settings", "role")}
    migrations.upgrade(alembic_cfg, "0004")
    proc = run_alembic(engine.url, "downgrade", "0003")
    assert proc.returncode == 0, proc.stderr
    assert "downgrade finished" in proc.stderr
    after = {t: table_md5(engine, t, order_by="1") for t in before}
    assert after == before
    assert scalar(engine, "SELECT count(*) FROM orgmig_report") == 0
    assert scalar(engine, "SELECT count(*) FROM orgmig_user_settings_link") == 0
    # And up again gives the same result as the first time.
    migrations.upgrade(alembic_cfg, "0004")
    assert failed_checks(engine) == []


def test_downgrade_refuses_when_the_app_built_on_migrated_rows(seeded, alembic_cfg):
    engine, summary = seeded
    migrations.upgrade(alembic_cfg, "0004")
    # The app invites a colleague into a personal org and gives a migrated user user-level settings.
    execute(engine, """
        WITH colleague AS (INSERT INTO "user" (keycloak_user_id) VALUES ('colleague') RETURNING id)
        INSERT INTO org_user (org_id, user_id, role_id)
        SELECT l.org_id, c.id, (SELECT id FROM role WHERE name = 'user')
        FROM (SELECT org_id FROM orgmig_user_settings_link ORDER BY user_settings_id LIMIT 1) l, colleague c""")
    execute(engine, """INSERT INTO settings (user_id, language)
                       SELECT user_id, 'it' FROM orgmig_user_settings_link ORDER BY user_settings_id LIMIT 2""")
    counts_before = scalar(engine, 'SELECT (SELECT count(*) FROM "user") + (SELECT count(*) FROM settings)')
    proc = run_alembic(engine.url, "downgrade", "0003")
    assert proc.returncode != 0
    assert "refusing to downgrade user_settings_to_org" in proc.stderr
    assert "1 org_user rows in migrated personal orgs" in proc.stderr
    assert "2 settings rows of migrated users" in proc.stderr
    assert "allow_data_loss=true" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert scalar(engine, 'SELECT (SELECT count(*) FROM "user") + (SELECT count(*) FROM settings)') == counts_before
    assert scalar(engine, "SELECT version_num FROM alembic_version") == "0004"
    forced = run_alembic(engine.url, "-x", "allow_data_loss=true", "downgrade", "0003")
    assert forced.returncode == 0, forced.stderr
    assert scalar(engine, 'SELECT count(*) FROM "user"') == 1  # only the colleague the app created
    assert scalar(engine, "SELECT count(*) FROM org") == 0
    assert scalar(engine, "SELECT count(*) FROM settings") == 0


def test_verification_fails_when_a_settings_value_is_tampered_with(seeded, alembic_cfg):
    engine, _ = seeded
    migrations.upgrade(alembic_cfg, "0004")
    assert failed_checks(engine) == []
    execute(engine, """UPDATE settings SET billing_margin = billing_margin + 1e-9
                       WHERE org_id = (SELECT org_id FROM orgmig_user_settings_link
                                       WHERE user_settings_id = (SELECT min(user_settings_id)
                                             FROM orgmig_user_settings_link l JOIN user_settings us
                                             ON us.id = l.user_settings_id WHERE us.billing_margin = 0.1))""")
    failed = {c.check_name: c.detail for c in verify.run(engine) if not c.ok}
    assert list(failed) == ["settings equal their legacy row, column for column"]
    assert failed["settings equal their legacy row, column for column"].startswith("2 rows differ")
    proc = orgmig(engine.url, "verify")
    assert proc.returncode == 1
    assert "FAIL" in proc.stdout


def test_verification_fails_when_a_legacy_row_is_neither_migrated_nor_reported(seeded, alembic_cfg):
    engine, _ = seeded
    migrations.upgrade(alembic_cfg, "0004")
    execute(engine, "DELETE FROM orgmig_report WHERE id = (SELECT min(id) FROM orgmig_report)")
    failed = {c.check_name for c in verify.run(engine) if not c.ok}
    assert "every legacy row migrated or reported" in failed


def test_result_does_not_depend_on_the_session_time_zone(pg_server, engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 800, seed=9)
    proc = run_alembic(engine.url, "upgrade", "0004", PGTZ="America/New_York")
    assert proc.returncode == 0, proc.stderr
    with engine.connect() as conn:
        conn.execute(text("SET TIME ZONE 'Asia/Kolkata'"))
        mismatched = conn.execute(text("""
        SELECT count(*) FROM orgmig_user_settings_link l
        JOIN user_settings us ON us.id = l.user_settings_id JOIN "user" u ON u.id = l.user_id
        WHERE u.accepted_tos IS DISTINCT FROM (us.accepted_tos AT TIME ZONE 'UTC')
           OR to_char(u.accepted_tos AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')
              IS DISTINCT FROM to_char(us.accepted_tos, 'YYYY-MM-DD HH24:MI:SS.US')""")).scalar()
    assert mismatched == 0
    assert failed_checks(engine) == []


def test_batch_size_from_x_argument_and_bad_values(seeded):
    engine, _ = seeded
    bad = run_alembic(engine.url, "-x", "batch_size=lots", "upgrade", "0004")
    assert bad.returncode != 0 and "batch_size must be a whole number" in bad.stderr
    ok = run_alembic(engine.url, "-x", "batch_size=1000", "upgrade", "0004")
    assert ok.returncode == 0, ok.stderr
    assert scalar(engine, "SELECT batch_size FROM orgmig_run") == 1000
    assert scalar(engine, "SELECT count(*) FROM orgmig_batch") == 3


def test_no_secret_in_any_output(seeded):
    engine, _ = seeded
    secrets = _secrets(engine)
    assert len(secrets) > 100
    outputs = []
    up = run_alembic(engine.url, "upgrade", "0004")
    outputs += [up.stdout, up.stderr]
    for args in (["verify"], ["verify", "--json"], ["status"], ["status", "--json"]):
        p = orgmig(engine.url, *args)
        outputs += [p.stdout, p.stderr]
    down = run_alembic(engine.url, "downgrade", "0003")
    outputs += [down.stdout, down.stderr]
    text_out = "\n".join(outputs)
    assert "user_settings_to_org upgrade finished" in text_out
    assert not [s for s in secrets if s in text_out]


def test_a_failing_batch_reports_the_error_without_row_values(seeded):
    """A constraint the data violates stops the run with a one-line error; no secret, no traceback."""
    engine, _ = seeded
    secrets = _secrets(engine)
    execute(engine, "ALTER TABLE settings ADD CONSTRAINT no_long_keys CHECK (length(llm_api_key) < 12)")
    proc = run_alembic(engine.url, "upgrade", "0004")
    assert proc.returncode != 0
    assert 'violates check constraint "no_long_keys"' in proc.stderr
    assert "run the same command again to resume" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not [s for s in secrets if s in proc.stderr + proc.stdout]
    assert scalar(engine, "SELECT status FROM orgmig_run") == "failed"
    assert scalar(engine, "SELECT count(*) FROM settings") == 0
    # Fix the cause and run again: it resumes and finishes.
    execute(engine, "ALTER TABLE settings DROP CONSTRAINT no_long_keys")
    again = run_alembic(engine.url, "upgrade", "0004")
    assert again.returncode == 0, again.stderr
    assert failed_checks(engine) == []

