"""app.ops.migrations and app.ops.verify on databases orgmig has not migrated (or not fully)."""

from __future__ import annotations

import pytest

from app.errors import DatabaseError
from app.ops import migrations, status, verify
from tests.support.db import execute


def test_data_revisions_are_the_ones_naming_a_step():
    assert migrations.data_revisions() == ["0004", "0007"]
    assert migrations.data_steps() == {"user_settings_to_org": "0004", "identity": "0007"}


def test_an_empty_database(engine):
    with engine.connect() as conn:
        assert migrations.applied_revisions(conn) == []
    st = status.collect(engine)
    assert st.current == () and st.runs == [] and st.pending[0] == "0001"
    with pytest.raises(DatabaseError, match=r"^no orgmig revision is applied to this database"):
        verify.run(engine)


def test_a_revision_orgmig_does_not_know(engine):
    execute(engine, "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
    execute(engine, "INSERT INTO alembic_version VALUES ('9f2c1d')")
    with engine.connect() as conn, pytest.raises(DatabaseError, match="at revision 9f2c1d, which this orgmig"):
        migrations.applied_revisions(conn)
    with pytest.raises(DatabaseError, match="at revision 9f2c1d"):
        status.collect(engine)


def test_verification_runs_per_applied_revision(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0001")
    checks = verify.run(engine)
    assert checks and {c.revision for c in checks} == {"0001"} and all(c.ok for c in checks)
