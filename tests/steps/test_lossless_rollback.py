"""Rolling back revision 0004 loses nothing the application changed in the new tables: settings
edits, users' values, users created through the new tables go back to user_settings first."""

from __future__ import annotations

from sqlalchemy import text

from app.ops import migrations
from app.ops.seed import seed_legacy
from tests.support.db import execute, scalar
from tests.support.migrate import orgmig, run_alembic


def test_a_downgrade_writes_back_what_the_app_changed(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 500, seed=11)
    migrations.upgrade(alembic_cfg, "0004")
    first, second = (scalar(engine, f"SELECT user_settings_id FROM orgmig_user_settings_link"
                                    f" ORDER BY user_settings_id LIMIT 1 OFFSET {n}") for n in (0, 1))
    # The application, after go-live: a settings edit, a user's email and TOS, and a new user with
    # a personal org of its own and settings there.
    execute(engine, """UPDATE settings SET language = 'eo', mcp_config = '{"edited": true}'
                       WHERE org_id = (SELECT org_id FROM orgmig_user_settings_link WHERE user_settings_id = :i)""",
            i=first)
    execute(engine, """UPDATE "user" SET email = 'new@example.org', accepted_tos = '2026-01-02 03:04:05+00'
                       WHERE id = (SELECT user_id FROM orgmig_user_settings_link WHERE user_settings_id = :i)""",
            i=second)
    execute(engine, """
        WITH o AS (INSERT INTO org (name) VALUES ('signup org') RETURNING id),
             s AS (INSERT INTO settings (org_id, language, agent) SELECT id, 'fr', 'CodeActAgent' FROM o)
        INSERT INTO "user" (keycloak_user_id, email, current_org_id)
        SELECT 'kc-signed-up-after', 'late@example.org', id FROM o""")
    legacy_rows = scalar(engine, "SELECT count(*) FROM user_settings")

    preview = orgmig(engine.url, "rollback-preview")
    assert preview.returncode == 0, preview.stderr
    lines = {line.strip().split(None, 1)[1]: int(line.split()[0].replace(",", ""))
             for line in preview.stdout.splitlines() if line.strip()[:1].isdigit()}
    assert lines == {"legacy rows whose settings the app changed": 1,
                     "legacy rows whose user values the app changed": 1,
                     "users created through the new tables (a legacy row each)": 1}

    down = run_alembic(engine.url, "downgrade", "0003")
    assert down.returncode == 0, down.stderr
    with engine.connect() as conn:
        edited = conn.execute(text("SELECT language, mcp_config::text FROM user_settings WHERE id = :i"),
                              {"i": first}).one()
        assert tuple(edited) == ("eo", '{"edited": true}')
        moved = conn.execute(text("SELECT email, accepted_tos FROM user_settings WHERE id = :i"), {"i": second}).one()
        assert moved.email == "new@example.org" and str(moved.accepted_tos) == "2026-01-02 03:04:05"
        late = conn.execute(text("SELECT email, language, agent FROM user_settings"
                                 " WHERE keycloak_user_id = 'kc-signed-up-after'")).one()
        assert tuple(late) == ("late@example.org", "fr", "CodeActAgent")
    assert scalar(engine, "SELECT count(*) FROM user_settings") == legacy_rows + 1
    assert scalar(engine, "SELECT count(*) FROM orgmig_user_settings_link") == 0
    # what the upgrade created is gone; the application's own user stays
    assert scalar(engine, 'SELECT count(*) FROM "user"') == 1
