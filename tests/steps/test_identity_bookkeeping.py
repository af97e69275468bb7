"""Revision 0009: the identity step's bookkeeping without the undo log's surrogate id, its user_id
index and the logged work list; its downgrade gives back revision 0006's shape exactly (an older
orgmig runs after a rollback), and the step works on either shape."""

from __future__ import annotations

from sqlalchemy.pool import NullPool

from app.batch import Options
from app.batch.runner import run_step
from app.config import with_overrides
from app.db import make_engine
from app.ops import migrations
from app.steps.identity import IDENTITY
from tests.support.db import catalog, execute, scalar, table_md5
from tests.support.identity import Ids, alembic, alembic_process, cli, reports, rows, start, state
from tests.support.identity.cast import ENV, ROLE_MAP
from tests.support.migrate import failed_checks
from tests.support.waiting import wait_until

UNDO_ROWS = """(SELECT provider, table_name, row_key, user_id, before, applied_updated_at, run_id, created_at
               FROM orgmig_identity_undo)"""
COLUMNS = """SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(:t) AND attnum > 0 AND NOT attisdropped
             ORDER BY attnum"""


def schema(engine) -> list[tuple[str, str]]:
    """The catalog without the plan's UNLOGGED tables, which a sync creates (not a revision)."""
    return [item for item in catalog(engine) if "orgmig_identity_plan" not in item[1]]


def columns(engine, table: str) -> list[str]:
    return [r[0] for r in rows(engine, COLUMNS, t=table)]


def test_revision_0009_down_gives_back_revision_0006s_shape_and_up_again_a_fresh_heads(identity_databases):
    url, engine = identity_databases.open("okta", "synced")
    fresh_url = identity_databases.empty()
    fresh = make_engine(fresh_url, poolclass=NullPool)
    head = schema(engine)
    undo = table_md5(engine, UNDO_ROWS, "table_name, row_key")
    assert undo[0] > 0
    assert "id" not in columns(engine, "orgmig_identity_undo")
    assert scalar(engine, "SELECT to_regclass('ix_orgmig_identity_undo_user_id')") is None
    assert scalar(engine, "SELECT to_regclass('orgmig_identity_todo')") is None
    # An unfinished run's planned account (the plan's tables hold one row per account with work).
    row_id = scalar(engine, "SELECT max(row_id) FROM idp_user WHERE provider = 'okta'")
    execute(engine, """INSERT INTO orgmig_identity_plan (provider, row_id, external_id, email_verified,
                                                         site_admin, linked)
                       VALUES ('okta', :r, 'planned', true, false, false)""", r=row_id)

    down = alembic(url, "downgrade", "0008")
    assert down.returncode == 0, down.stderr[-3000:]
    migrations.upgrade(migrations.alembic_config(fresh_url), "0008")
    assert schema(engine) == schema(fresh)
    assert columns(engine, "orgmig_identity_undo") == columns(fresh, "orgmig_identity_undo")
    assert table_md5(engine, UNDO_ROWS, "table_name, row_key") == undo  # every record, as it was
    assert rows(engine, "SELECT count(*), count(DISTINCT id), min(id) FROM orgmig_identity_undo") == [
        (undo[0], undo[0], 1)]
    assert rows(engine, "SELECT provider, row_id FROM orgmig_identity_todo") == [("okta", row_id)]

    up = alembic(url, "upgrade", "head")
    assert up.returncode == 0, up.stderr[-3000:]
    assert schema(engine) == head
    assert table_md5(engine, UNDO_ROWS, "table_name, row_key") == undo
    engine.dispose()
    fresh.dispose()


def test_the_step_syncs_and_rolls_back_below_revision_0009(identity_databases):
    """On revision 0006's shape (a database between 0007 and 0009) a sync walks its plan, leaves
    the work list empty and the user_id index as it was, and the downgrade undoes it exactly."""
    url, engine = identity_databases.open("okta", "synced")
    assert alembic(url, "downgrade", "0008").returncode == 0
    # the application takes a membership the sync made: the next sync has work to do
    execute(engine, "DELETE FROM org_user WHERE (org_id, user_id) IN (SELECT org_id, user_id FROM org_user m"
                    " JOIN org o ON o.id = m.org_id WHERE o.external_id IS NOT NULL LIMIT 1)")
    undo = scalar(engine, "SELECT count(*) FROM orgmig_identity_undo")
    done = cli(url, "sync", "--provider", "okta")
    assert done.code == 0, done.everything[-3000:]
    assert scalar(engine, "SELECT count(*) FROM orgmig_identity_undo") >= undo
    assert scalar(engine, "SELECT count(*) FROM orgmig_identity_todo") == 0
    assert scalar(engine, "SELECT to_regclass('ix_orgmig_identity_undo_user_id') IS NOT NULL")
    down = alembic(url, "downgrade", "0006")
    assert down.returncode == 0, down.stderr[-3000:]
    assert scalar(engine, "SELECT count(*) FROM orgmig_identity_undo") == 0
    assert scalar(engine, "SELECT count(*) FROM user_identity") == 0
    engine.dispose()


def test_a_run_whose_plan_a_server_restart_emptied_plans_again_before_its_next_claim(identity_databases):
    """The accounts a run walks are its plan's (UNLOGGED) rows: emptied under a running process (as
    a server restart empties them), the next claim plans the remaining work again first, so the
    batches keep their size (not one claim of the rest of the run) and the result is an
    uninterrupted run's."""
    provider = "okta"
    url, engine = identity_databases.open(provider, "exported")
    reference = make_engine(identity_databases.template_url(provider, "synced"), poolclass=NullPool)
    ids = Ids(provider, start(provider))
    done = """SELECT count(*) FROM orgmig_batch b JOIN orgmig_run r ON r.id = b.run_id
              WHERE r.step = 'identity:okta' AND b.status = 'succeeded'"""
    proc = alembic_process(url, "upgrade", "head", ORGMIG_PAUSE_MS="300", ORGMIG_BATCH_SIZE="8",
                           ORGMIG_WORKERS="1")
    wait_until(lambda: scalar(engine, done) >= 2, alive=proc, what="two batches finished")
    execute(engine, "TRUNCATE orgmig_identity_plan, orgmig_identity_plan_member, orgmig_identity_plan_run")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert "computed again" in err
    assert scalar(engine, """SELECT max(b.rows_read) FROM orgmig_batch b JOIN orgmig_run r ON r.id = b.run_id
                             WHERE r.step = 'identity:okta'""") <= 8
    assert state(engine, ids) == state(reference, ids)
    assert reports(engine, ids) == reports(reference, ids)
    assert failed_checks(engine) == []
    engine.dispose()
    reference.dispose()


def test_the_downgrade_at_revision_0009_undoes_the_sync_and_leaves_the_shape_as_it_found_it(identity_databases):
    """At revision 0009's shape (no user_id index) the identity downgrade, run by the engine (it
    builds the index it walks the undo log by where it is missing), undoes the sync and drops the
    index again: the schema is as it found it."""
    url, engine = identity_databases.open("okta", "synced")
    before = schema(engine)
    settings = with_overrides({"idp_env": ENV, "role_map": ROLE_MAP})
    run_step(engine, IDENTITY.step("okta", settings), "downgrade", Options.from_settings(settings, progress_bar=False))
    assert scalar(engine, "SELECT count(*) FROM orgmig_identity_undo WHERE provider = 'okta'") == 0
    assert scalar(engine, "SELECT count(*) FROM user_identity") == 0
    assert scalar(engine, "SELECT to_regclass('ix_orgmig_identity_undo_user_id')") is None
    assert schema(engine) == before
    engine.dispose()
