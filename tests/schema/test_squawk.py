"""Lock safety, linted: squawk finds nothing in `alembic upgrade head --sql` under .squawk.toml
(what `.ci/squawk.py` checks in CI), and the rules that matter for locks still apply to a new
revision: the configuration ignores style rules that do not apply, not lock safety."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.migrate import ROOT

SQUAWK = Path(sys.executable).with_name("squawk")


def test_the_offline_sql_of_every_revision_is_squawk_clean():
    p = subprocess.run([sys.executable, str(ROOT / ".ci" / "squawk.py")], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "9 revisions (0001_legacy_baseline .. 0009_slim_identity_bookkeeping)" in p.stdout
    assert p.stdout.rstrip().endswith("squawk: no finding")


def test_a_new_revision_that_blocks_the_application_is_still_flagged(tmp_path):
    sql = tmp_path / "0099_probe.sql"
    sql.write_text('BEGIN;\nCREATE INDEX ix_user_probe ON "user" (email);\n'
                   'ALTER TABLE org_user ADD CONSTRAINT uq_probe UNIQUE (user_id);\nCOMMIT;\n')
    p = subprocess.run([str(SQUAWK), "--config", str(ROOT / ".squawk.toml"), "--reporter", "gcc", str(sql)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    for rule in ("require-concurrent-index-creation", "disallowed-unique-constraint"):
        assert rule in p.stdout, p.stdout
