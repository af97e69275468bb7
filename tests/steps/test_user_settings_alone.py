"""Revision 0004 alone on its database: the batches go without looking up the rows that exist
already (upgrade.sql, `:lookups`) until one meets such a row (a user the application migrated
before the run reached it): that batch runs again with the lookups, as do the ones after it, and
the result is what the lookups give (test_user_settings.py: the same rows, linked, never
overwritten, reported, verified, and downgraded exactly)."""

from __future__ import annotations

import time

from app.ops import migrations
from app.ops.seed import seed_legacy
from tests.steps.test_user_settings import _premigrate
from tests.support.db import fetch_all, scalar, table_md5
from tests.support.migrate import failed_checks

# Steered, so that the run knows it is alone: more than 20 rounds of 10-row batches, a window of
# 25 probes of 50 ms.
ALONE = {"batch_size": "10", "workers": "1", "steer_probe_ms": "50"}


def test_alone_the_batches_skip_the_lookups_until_a_row_exists(engine, alembic_cfg, capfd):
    migrations.upgrade(alembic_cfg, "0003")
    summary = seed_legacy(engine, 600, seed=3)
    _premigrate(engine)
    app_user_before = table_md5(engine, '"user"')
    time.sleep(1.5)  # this test's own sessions idle for a window: the run starts alone
    capfd.readouterr()
    migrations.upgrade(migrations.alembic_config(engine.url, ALONE), "0004")
    log = capfd.readouterr().err
    actions = [r.action for r in fetch_all(engine, "SELECT action FROM orgmig_steer_decision ORDER BY id")]
    assert actions[:2] == ["start", "alone"], actions
    # the batch holding the users the application migrated met them, and ran again with the lookups
    assert "..900003 hold rows migrated before the run reached them" in log
    assert log.count("the batches look them up from now on") == 1
    links = {r.user_settings_id: r for r in fetch_all(engine,
        "SELECT * FROM orgmig_user_settings_link WHERE user_settings_id > 900000")}
    assert set(links) == {900001, 900002, 900003}
    assert not any(link.created_user for link in links.values())
    assert [links[i].created_org for i in (900001, 900002, 900003)] == [False, True, False]
    assert links[900002].filled_user_columns == [
        "accepted_tos", "enable_sound_notifications", "legacy_user_settings_id", "current_org_id"]
    assert scalar(engine, """SELECT email FROM "user" WHERE keycloak_user_id = 'app-user-only'""") == "app@example.com"
    notes = {(r.source_id, r.reason) for r in fetch_all(engine, "SELECT source_id, reason FROM orgmig_report"
                                                                 " WHERE migrated")}
    assert notes == {(900002, "user_differs"), (900003, "settings_differ")}
    # every other legacy row migrated or reported, as the lookups would have had it
    assert scalar(engine, "SELECT count(*) FROM orgmig_user_settings_link") == summary.migratable + 3
    assert scalar(engine, "SELECT count(*) FROM orgmig_user_settings_link WHERE created_user") == summary.migratable
    assert failed_checks(engine) == []
    migrations.downgrade(alembic_cfg, "0003")
    assert table_md5(engine, '"user"') == app_user_before
    assert scalar(engine, "SELECT count(*) FROM org") == 2
    assert scalar(engine, "SELECT count(*) FROM settings") == 2
