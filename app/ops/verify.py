"""Run the verification SQL shipped beside each applied revision.

Each `alembic/verify/NNNN_*.sql` file holds read-only queries returning rows
`(check_name, ok, detail)`. They run here exactly as a DBA runs them with `psql -f`, inside a
READ ONLY transaction with a statement timeout. A SQL error in a file (a timeout, a missing
table) is a one-line DatabaseError naming the file; a database with no orgmig revision applied
has nothing to verify and is one too.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import Engine

from app.batch import runs
from app.config import get_settings
from app.db import error_summary, redact, transaction
from app.errors import DatabaseError
from app.ops import migrations
from app.steps.user_settings import SQL as CAPTURE

NOTHING_APPLIED = "no orgmig revision is applied to this database: run `alembic upgrade head` first"


@dataclass(frozen=True)
class Check:
    revision: str
    file: str
    check_name: str
    ok: bool
    detail: str


def verification_files(revisions: list[str], directory: Path) -> dict[str, Path | None]:
    """The verification file of each revision (None where a revision ships none)."""
    found: dict[str, Path | None] = {}
    for rev in revisions:
        matches = sorted(directory.glob(f"{rev}_*.sql"))
        found[rev] = matches[0] if matches else None
    return found


def run_file(engine: Engine, path: Path, revision: str) -> list[Check]:
    """Run one verification file; every result set must have the (check_name, ok, detail) shape."""
    sql = path.read_text(encoding="utf-8")
    timeout_ms = get_settings().verify_timeout_ms
    checks: list[Check] = []
    try:
        # Read only, and allowed the verification timeout for locks as for statements.
        with engine.connect() as conn, transaction(conn, lock_timeout_ms=timeout_ms, statement_timeout_ms=timeout_ms,
                                                   transaction_read_only="on"):
            # The driver's own cursor: a file holds several queries, each its own result set.
            with conn.connection.driver_connection.cursor() as cur:
                cur.execute(sql)
                while True:
                    if cur.description is not None:
                        names = [d.name for d in cur.description]
                        if names[:3] != ["check_name", "ok", "detail"]:
                            checks.append(
                                Check(revision, path.name, f"result shape of {path.name}", False,
                                      f"a query returned columns {names}, expected check_name, ok, detail")
                            )
                        else:
                            for name, ok, detail in cur.fetchall():
                                checks.append(Check(revision, path.name, str(name), ok is True, str(detail or "")))
                    if not cur.nextset():
                        break
    except psycopg.Error as exc:
        # SQLSTATE and primary message only: a DETAIL line could quote a row's values.
        raise DatabaseError(f"{path.name} failed on {redact(engine.url)}: {error_summary(exc)}") from None
    return checks


def run(engine: Engine) -> list[Check]:
    """All checks of all applied revisions, oldest revision first."""
    with engine.connect() as conn:
        revisions = migrations.applied_revisions(conn)
    if not revisions:
        raise DatabaseError(NOTHING_APPLIED)
    checks: list[Check] = []
    for rev, path in verification_files(revisions, migrations.verify_dir()).items():
        if path is None:
            checks.append(Check(rev, "-", f"verification file for revision {rev}", False,
                                f"alembic/verify/{rev}_*.sql is missing"))
            continue
        checks.extend(run_file(engine, path, rev))
    return checks + in_progress(engine) + captured_writes(engine)


def in_progress(engine: Engine) -> list[Check]:
    """A failing check per data run that is not finished: the checks of its revision (not yet
    applied) do not run, and those of the others may describe a half-moved database."""
    with engine.connect() as conn:
        if not runs.exists(conn):
            return []
        unfinished = runs.unfinished(conn)
    revisions = migrations.data_steps()
    checks = []
    for r in unfinished:
        rev = revisions.get(r["step"]) or revisions.get(r["step"].split(":", 1)[0], "-")
        state = r["status"] if r["live"] or r["status"] != "running" else "interrupted (no live process)"
        pct = 100.0 * r["rows_done"] / r["total_rows"] if r["total_rows"] else 0.0
        checks.append(Check(rev, "-", f"revision {rev} data step {r['step']} finished", False,
                            f"revision {rev} is in progress: run {r['id']} {r['direction']} {state},"
                            f" {r['rows_done']:,}/{r['total_rows']:,} rows ({pct:.1f}%); run the same"
                            " alembic command to finish it"))
    return checks


def captured_writes(engine: Engine) -> list[Check]:
    """While revision 0004's capture is in force (until `orgmig finalize`): a check that fails
    while captured writes to user_settings wait to be applied, since the checks of 0004 then
    describe the new tables as they were before those writes."""
    with engine.connect() as conn:
        if not conn.execute(CAPTURE("capture.installed")).scalar_one():
            return []
        pending = conn.execute(CAPTURE("capture.pending")).scalar_one()
    detail = ("all applied; the capture is in force until `orgmig finalize`" if not pending else
              f"{pending:,} captured writes wait to be applied: run `orgmig work` (or `orgmig finalize`,"
              " once the application no longer writes user_settings)")
    return [Check("0004", "-", "application writes to user_settings applied to the new tables", not pending, detail)]


def as_json(checks: list[Check]) -> str:
    return json.dumps(
        {"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}, indent=2
    )
