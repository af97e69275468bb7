"""The legacy table's DDL as the shared contract gives it, for databases that predate orgmig."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Engine, text

SHARED_LEGACY_SQL = Path(__file__).resolve().parents[3] / "shared" / "legacy_schema.sql"


def legacy_ddl() -> str:
    """The contract file when it is beside the checkout, else revision 0001's own copy."""
    if SHARED_LEGACY_SQL.is_file():
        return SHARED_LEGACY_SQL.read_text()
    import importlib.util

    rev = Path(__file__).resolve().parents[2] / "alembic" / "versions" / "0001_legacy_baseline.py"
    spec = importlib.util.spec_from_file_location("rev0001", rev)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    index = "CREATE INDEX IF NOT EXISTS ix_user_settings_keycloak_user_id ON user_settings (keycloak_user_id)"
    return module.LEGACY_DDL + ";\n" + index + ";"


def create_legacy_table(engine: Engine) -> None:
    """What every real deployment has before orgmig: user_settings, created by the application."""
    without_comments = "\n".join(re.sub(r"--.*$", "", line) for line in legacy_ddl().splitlines())
    with engine.begin() as conn:
        for stmt in without_comments.split(";"):
            if stmt.strip():
                conn.execute(text(stmt))
