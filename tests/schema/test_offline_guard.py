"""The offline script's stamp guard says, in words, which version it expected after which
revision (PL/pgSQL's RAISE placeholder is `%`: `%s` printed "0005s")."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from app.ops import migrations
from app.ops.databases import libpq
from tests.support.migrate import run_alembic


@pytest.mark.skipif(shutil.which("psql") is None, reason="needs psql")
def test_the_stamp_guard_names_the_version_and_the_revision(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    script = run_alembic(engine.url, "upgrade", "0003:0005", "--sql")
    assert script.returncode == 0, script.stderr
    # Without ON_ERROR_STOP psql goes on past the data revision 0004, which stops itself; 0005's
    # stamp then finds alembic_version still at 0003.
    body = script.stdout.replace("\\set ON_ERROR_STOP on", "", 1)
    psql = subprocess.run(["psql", libpq(engine.url), "-X", "-q", "-f", "-"], input=body, capture_output=True,
                          text=True, timeout=60)
    assert ("ERROR:  orgmig: alembic_version is not 0005 after revision 0005: an earlier statement of this"
            " script failed; nothing of this revision is kept") in psql.stderr, psql.stderr
