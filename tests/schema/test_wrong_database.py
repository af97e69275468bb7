"""The wrong database is caught: `alembic upgrade head` against a database that is not the
application's warns in one line naming it (and building nothing there is the operator's call), and
ORGMIG_REQUIRE_LEGACY_ROWS=true (or `-x require_legacy_rows=true`) makes it an error, exit 2."""

from __future__ import annotations

from app.ops.seed import seed_legacy
from tests.support.db import execute, scalar
from tests.support.legacy import create_legacy_table
from tests.support.migrate import run_alembic


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "WARNI" in line]


def _another_application(engine) -> None:
    execute(engine, "CREATE TABLE invoice (id int PRIMARY KEY, total numeric)")
    execute(engine, "INSERT INTO invoice VALUES (1, 9.5), (2, 12)")


def test_a_database_without_user_settings_but_with_other_tables_is_named_in_one_warning(engine):
    _another_application(engine)
    name = engine.url.database
    done = run_alembic(engine.url, "upgrade", "head")
    assert done.returncode == 0, done.stderr
    (baseline,) = [w for w in _warnings(done.stderr) if "no user_settings" in w]
    assert f"database {name} (postgresql+psycopg://" in baseline
    assert "has 1 other table (invoice) but no user_settings: revision 0001 creates an empty one" in baseline
    assert "`alembic downgrade base`" in baseline and "ORGMIG_REQUIRE_LEGACY_ROWS=true" in baseline
    # And the data revision finds user_settings empty beside the invoices.
    (empty,) = [w for w in _warnings(done.stderr) if "is empty" in w]
    assert f"user_settings in database {name} " in empty and "but invoice hold rows" in empty


def test_require_legacy_rows_stops_the_upgrade_at_0001_with_exit_2(engine):
    _another_application(engine)
    stopped = run_alembic(engine.url, "upgrade", "head", ORGMIG_REQUIRE_LEGACY_ROWS="true")
    assert stopped.returncode == 2, stopped.stderr
    assert stopped.stderr.strip().splitlines()[-1] == (
        f"alembic: database {engine.url.database} ({engine.url.render_as_string(hide_password=True)}) has no"
        " user_settings table, and ORGMIG_REQUIRE_LEGACY_ROWS=true requires its rows: point DATABASE_URL at the"
        " application's database (revision 0001 was not applied)")
    assert scalar(engine, "SELECT to_regclass('user_settings') IS NULL AND to_regclass('org') IS NULL")


def test_an_empty_user_settings_stops_the_data_revision_with_the_x_argument(engine):
    create_legacy_table(engine)
    stopped = run_alembic(engine.url, "-x", "require_legacy_rows=true", "upgrade", "head")
    assert stopped.returncode == 2, stopped.stderr
    last = stopped.stderr.strip().splitlines()[-1]
    assert last.startswith(f"alembic: user_settings in database {engine.url.database} (")
    assert last.endswith("is empty, and ORGMIG_REQUIRE_LEGACY_ROWS=true requires its rows: point DATABASE_URL at"
                         " the application's database (the revisions before 0004 stay applied)")
    assert scalar(engine, "SELECT version_num FROM alembic_version") == "0003"
    # With its rows, the same command goes on.
    seed_legacy(engine, 50, seed=1)
    done = run_alembic(engine.url, "-x", "require_legacy_rows=true", "upgrade", "head")
    assert done.returncode == 0, done.stderr
    assert not _warnings(done.stderr)


def test_a_new_empty_database_upgrades_without_a_warning(engine):
    done = run_alembic(engine.url, "upgrade", "head")
    assert done.returncode == 0, done.stderr
    assert not _warnings(done.stderr)
