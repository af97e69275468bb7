"""The README's way to run alembic from any directory: `-c` with the checkout's alembic.ini."""

from __future__ import annotations

import subprocess
import sys

from tests.support.db import scalar
from tests.support.migrate import ROOT, alembic_env


def test_alembic_with_the_checkouts_ini_runs_from_another_directory(engine, tmp_path):
    bare = subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=tmp_path,
                          env=alembic_env(engine.url), capture_output=True, text=True, timeout=120)
    assert bare.returncode != 0  # no alembic.ini here: what the README's `-c` is for
    done = subprocess.run([sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "upgrade", "head"],
                          cwd=tmp_path, env=alembic_env(engine.url), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert scalar(engine, "SELECT version_num FROM alembic_version") == "0009"
