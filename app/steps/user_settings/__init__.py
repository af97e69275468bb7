"""Step `user_settings_to_org` (revision 0004): every legacy user_settings row into the org schema.

Per legacy row with a valid, winning keycloak_user_id: a personal org `user_{id}_org`, a "user",
an `admin`/`active` membership and an org settings row carrying every other column unchanged;
rows it cannot migrate (NULL, empty or blank ids; losing duplicates) are reported with a reason.
Users the application already migrated are linked and only their missing values filled; what
the application wrote is never overwritten (differences are reported, by column name only).
Filling leaves `updated_at` alone, so a downgrade restores such a row byte for byte.

The SQL is in this folder: upgrade.sql (one statement per batch over a keyset range of
user_settings.id), downgrade.sql and dependent_rows.sql (over orgmig_user_settings_link),
guard.sql and run.sql.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

from app import db
from app.batch import (
    ALL_KEYS,
    LAST_KEY,
    Batch,
    BatchResult,
    ConcurrentChange,
    DowngradeRefused,
    KeySource,
    MigrationError,
    SqlFiles,
    Step,
)
from app.schema import SETTINGS_COLUMNS, user_settings
from app.steps.roles import ensure_roles, remove_roles

log = logging.getLogger("app.steps.user_settings")

# The columns a user row holds too; the write-back of a new user takes them from the user first.
USER_COLUMNS = ("email", "email_verified", "accepted_tos", "enable_sound_notifications")
SQL = SqlFiles(
    Path(__file__).parent,
    settings_columns=", ".join(SETTINGS_COLUMNS),
    settings_values=", ".join(f"s.{c}" for c in SETTINGS_COLUMNS),
    settings_values_us=", ".join(f"us.{c}" for c in SETTINGS_COLUMNS),
    settings_columns_but_user=", ".join(c for c in SETTINGS_COLUMNS if c not in USER_COLUMNS),
    # (a user without settings: the legacy table's defaults where it has NOT NULL columns)
    settings_values_but_user=", ".join(
        f"coalesce(s.{c.name}, {c.server_default.arg.text})" if not c.nullable and c.server_default is not None
        else f"s.{c.name}" for c in user_settings.columns if c.name in SETTINGS_COLUMNS and c.name not in USER_COLUMNS),
    # the two sides of "the legacy row's settings differ from the settings row" (json as text)
    legacy_compare=", ".join(f"us.{c}::text" if c == "mcp_config" else
                             f"CAST(us.{c} AS timestamptz)" if c == "accepted_tos" else f"us.{c}"
                             for c in SETTINGS_COLUMNS),
    target_compare=", ".join(f"s.{c}::text" if c == "mcp_config" else f"s.{c}" for c in SETTINGS_COLUMNS),
)
ROLES = ("admin", "user")  # what the personal orgs need
UNIQUE_VIOLATION = "23505"


@dataclass
class Walk:
    """What every batch of one run reads (prepare's answer): the sequence behind "user".id, and
    whether this process's batches look up the rows that exist already even while the run is
    alone on its database. Alone, a batch first goes without those lookups (no application
    writes meanwhile, and a row migrated before the run makes the batch fail whole, upgrade.sql);
    the first that finds one turns them on for the rest of the run."""

    user_id_sequence: str
    lookups: bool = False
INSERTED = ("orgs", "users", "members", "settings")
DRAIN_CHUNK = 500  # captured changes applied a transaction
# The legacy columns as the legacy DDL types them (PostgreSQL's format_type spelling).
CONTRACT_TYPES = {c.name: c.type.compile(dialect=postgresql.dialect()).lower()
                  .replace("varchar", "character varying").replace("float", "double precision")
                  for c in user_settings.columns}


class UserSettingsToOrg(Step):
    name = "user_settings_to_org"
    # Every read in the batch statements is a keyed lookup. The target tables grow from empty
    # during the run, and statistics taken while they were empty (or none at all) would let
    # the planner scan them whole once per batch: take the index paths whatever the stats say.
    # TimeZone: a naive legacy timestamp holds UTC (see upgrade.sql).
    batch_settings = {"enable_seqscan": "off", "enable_hashjoin": "off",
                      "enable_mergejoin": "off", "TimeZone": "UTC"}
    analyze_after = ("role", "org", '"user"', "org_user", "settings", "orgmig_user_settings_link")

    def keys(self, direction: str) -> KeySource:
        if direction == "upgrade":
            return KeySource("user_settings", "id")
        return KeySource("orgmig_user_settings_link", "user_settings_id")

    def plan(self, conn: Connection, direction: str) -> None:
        if direction == "upgrade":
            # Before the run's key range is fixed: every write after this point is captured.
            conn.exec_driver_sql(SQL.source("capture.install"))
            log.info("%s: the application's writes to user_settings are captured from now on and"
                     " applied to the new tables until `orgmig finalize`", self.name)
        elif conn.execute(SQL("capture.installed")).scalar_one():
            # Before the downgrade's key range is fixed: what the application wrote to
            # user_settings since the upgrade reaches the new tables first (so the write-back
            # of the new tables' values cannot undo it), and the capture ends.
            while apply_changes(self, conn, None, limit=DRAIN_CHUNK):
                pass
            self.end_capture(conn, None)

    def prepare(self, conn: Connection, direction: str, run_id: int) -> Walk:
        if direction == "upgrade":
            self._check_legacy_columns(conn, run_id)
            ensure_roles(conn, self.name, ROLES)
        return Walk(conn.execute(SQL("run.user_id_sequence")).scalar_one())

    def _check_legacy_columns(self, conn: Connection, run_id: int) -> None:
        """Before the first batch: a contract column missing from user_settings stops the run
        (nothing written); a column the contract does not know is reported and named in a
        warning (it is copied nowhere); a column of another type than the legacy DDL's is
        converted by its actual type (a timestamptz keeps its instant) and named in the log."""
        actual = dict(conn.execute(SQL("run.legacy_columns")).all())
        missing = [c for c in CONTRACT_TYPES if c not in actual]
        if missing:
            raise MigrationError(
                f"{self.name}: user_settings has no column {', '.join(missing)}, which the migration"
                " copies; nothing was written. Restore the legacy table's columns (see"
                " alembic/versions/0001_legacy_baseline.py) and run the upgrade again")
        for column, found in actual.items():
            expected = CONTRACT_TYPES.get(column)
            if expected is None:
                conn.execute(SQL("run.report_unmapped_column"),
                             {"step": self.name, "column": column, "run_id": run_id})
                log.warning("%s: user_settings.%s (%s) is not part of the data contract: it is not"
                            " copied anywhere, and reported as unmapped_legacy_column", self.name,
                            column, found)
            elif found != expected:
                log.info("%s: user_settings.%s is %s (the legacy DDL says %s): converted by its type",
                         self.name, column, found, expected)

    def restore_new_users(self, conn: Connection) -> int:
        """Users the application created through the new tables get a legacy row each."""
        return conn.execute(SQL("rollback.new_users")).rowcount

    def check_downgrade(self, conn: Connection, allow_data_loss: bool) -> None:
        counts = dict(conn.execute(SQL("dependent_rows"), {**ALL_KEYS, "ids": None, "delete": False}).mappings().one())
        counts.pop("written")
        for (tbl, col, target), n in self.referencing_rows(conn).items():
            if n and allow_data_loss:
                # Even with allow_data_loss: these rows are the application's, in tables orgmig
                # does not own, so it never deletes them.
                raise DowngradeRefused(
                    f"{n} rows of {tbl} reference {target} rows created by this migration; they"
                    f" belong to the application and orgmig does not delete them: remove or"
                    f" re-point them ({tbl}.{col}) first. Nothing was deleted.")
            counts[f"{tbl} rows referencing migrated {target} rows"] = n
        DowngradeRefused.unless_allowed(self.name, counts, allow_data_loss, "the application created rows that"
                                        " depend on rows this migration created")

    @staticmethod
    def foreign_refs(conn: Connection) -> list[tuple[str, str, str, str, str]]:
        """(table, column, org or "user", the link's created flag, the link's key) of every other
        table with a foreign key into org or "user" (the application's own, the identity step's)."""
        return [(tbl, col, target, *(("created_org", "org_id") if target == "org" else ("created_user", "user_id")))
                for tbl, col, target in conn.execute(SQL("guard.foreign_refs")).all()]

    def referencing_rows(self, conn: Connection) -> dict[tuple[str, str, str], int]:
        """{(table, column, target): rows referencing rows the upgrade created}, over every link."""
        return {(tbl, col, target): conn.execute(SQL("guard.referencing_rows", table=tbl, column=col, target_key=key,
                                                     created=created)).scalar_one()
                for tbl, col, target, created, key in self.foreign_refs(conn)}

    def referenced(self, conn: Connection, ids: list[int]) -> set[int]:
        """Which of the legacy rows `ids` have a migrated user or org another table references."""
        found: set[int] = set()
        for tbl, col, _, created, key in self.foreign_refs(conn):
            found.update(conn.execute(SQL("guard.referenced_links", table=tbl, column=col, target_key=key,
                                          created=created), {"ids": ids}).scalars())
        return found

    def upgrade(self, conn: Connection, batch: Batch) -> BatchResult:
        walk: Walk = batch.state
        if batch.alone and not walk.lookups:
            r = self._migrate_alone(conn, batch, walk)
        else:
            r = self.migrate(conn, batch.start, batch.end, batch.max_key, batch.run_id, walk.user_id_sequence)
        written = sum(r[f"{kind}_inserted"] for kind in INSERTED)
        return BatchResult(r["rows_read"], written + r["fills_done"] + r["linked"] + r["reported"])

    def _migrate_alone(self, conn: Connection, batch: Batch, walk: Walk) -> dict:
        """The batch without the lookups of rows that exist already (upgrade.sql, :lookups), in a
        savepoint: a unique violation means one did exist (the login path migrated a user before
        the run reached it, the application created one), and the batch runs again with them, as
        does every batch of this process after it."""
        args = (conn, batch.start, batch.end, batch.max_key, batch.run_id, walk.user_id_sequence)
        try:
            with conn.begin_nested():
                return self.migrate(*args, lookups=False)
        except DBAPIError as exc:
            if db.sqlstate(exc) != UNIQUE_VIOLATION:
                raise
        walk.lookups = True
        log.info("%s: keys %s..%s hold rows migrated before the run reached them: the batches look"
                 " them up from now on", self.name, batch.start, batch.end)
        return self.migrate(*args)

    def migrate(self, conn: Connection, start: int, end: int, max_key: int, run_id: int | None,
                user_id_sequence: str, ids: list[int] | None = None, lookups: bool = True) -> dict:
        """The upgrade statement over start..end (only `ids` among them, for the login path);
        ConcurrentChange when a concurrent writer got in between its snapshot and its inserts.
        `lookups` False: without looking up the rows that exist already (upgrade.sql)."""
        r = conn.execute(SQL("upgrade"), {
            "start": start, "end": end, "ids": ids, "max_key": max_key, "run_id": run_id,
            "step": self.name, "user_id_sequence": user_id_sequence, "lookups": lookups,
        }).mappings().one()
        short = [kind for kind in INSERTED if r[f"{kind}_expected"] != r[f"{kind}_inserted"]]
        if short or r["linked"] != r["winners"] or r["fills_expected"] != r["fills_done"]:
            # A concurrent writer (the app migrating a user at login) wrote a row between this
            # statement's snapshot and its insert; the batch is rolled back and retried.
            raise ConcurrentChange(
                f"rows in {start}..{end} changed while the batch ran"
                f" ({', '.join(short) or 'links'} differ from what the batch expected)")
        return dict(r)

    def downgrade(self, conn: Connection, batch: Batch) -> BatchResult:
        keys = {"start": batch.start, "end": batch.end, "ids": None}
        # First what the application changed goes back to user_settings (lossless rollback).
        written_back = conn.execute(SQL("rollback.settings"), keys).rowcount
        written_back += conn.execute(SQL("rollback.users"), keys).rowcount
        extra = written_back
        if batch.allow_data_loss:
            extra = conn.execute(SQL("dependent_rows"), {**keys, "delete": True}).mappings().one()["written"]
        r = conn.execute(SQL("downgrade"), keys).mappings().one()
        return BatchResult(r["rows_read"], r["written"] + extra)

    def drain(self, conn: Connection, direction: str, run_id: int) -> bool:
        if direction != "upgrade" or not conn.execute(SQL("capture.installed")).scalar_one():
            return False
        apply_changes(self, conn, run_id, limit=DRAIN_CHUNK)
        return conn.execute(SQL("capture.pending")).scalar_one() > DRAIN_CHUNK // 10

    def end_capture(self, conn: Connection, run_id: int | None) -> int:
        """The contract step (`orgmig finalize`, a downgrade): the tables to itself (capture.lock),
        the last captured changes applied, the capture removed; returns the changes applied."""
        conn.exec_driver_sql(SQL.source("capture.lock"))
        applied = 0
        while taken := apply_changes(self, conn, run_id, limit=DRAIN_CHUNK):
            applied += taken
        conn.exec_driver_sql(SQL.source("capture.remove"))
        return applied

    def finish(self, conn: Connection, direction: str, run_id: int) -> None:
        if direction == "upgrade":
            # The changes captured up to now are applied (the drain brought them under a tenth
            # of a drain's share); the capture stays, and so do the application's later writes,
            # until `orgmig finalize`.
            if conn.execute(SQL("capture.installed")).scalar_one():
                apply_changes(self, conn, run_id, limit=DRAIN_CHUNK)
            return
        if conn.execute(SQL("capture.installed")).scalar_one():
            # (a downgrade resumed from before its plan ended the capture)
            conn.exec_driver_sql(SQL.source("capture.lock"))
            conn.exec_driver_sql(SQL.source("capture.remove"))
        added = self.restore_new_users(conn)
        if added:
            log.info("%s: %d users the application created through the new tables got a legacy row",
                     self.name, added)
        conn.execute(SQL("run.forget_reports"), {"step": self.name})
        remove_roles(conn, self.name)

    def summary(self, conn: Connection, direction: str, run_id: int) -> dict[str, int]:
        r = conn.execute(SQL("run.summary")).mappings().one()
        summary = {"legacy rows": r["legacy_rows"], "migrated": r["migrated"],
                   "users created": r["users_created"], "found already migrated": r["users_found"]}
        if r["unmapped_columns"]:
            summary["legacy columns copied nowhere (reported)"] = r["unmapped_columns"]
        return summary


def apply_changes(step: UserSettingsToOrg, conn: Connection, run_id: int | None, limit: int) -> int:
    """Up to `limit` captured changes applied (capture.sql says how); returns how many were taken."""
    for name, value in {**step.batch_settings}.items():
        conn.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})
    taken = conn.execute(SQL("capture.take"), {"n": limit}).mappings().one()
    if taken["moved"]:
        conn.exec_driver_sql(SQL.source("capture.link_index"))
        ids = conn.execute(SQL("capture.group_ids"), {"moved": taken["moved"], "groups": taken["groups"]}).scalar_one()
        # Built on: rows of the application's (or the identity step's: a user_identity link
        # would go with its user, on delete cascade) that hang on what was migrated.
        referenced = step.referenced(conn, ids)
        kept = [i for i in ids if i in referenced or any(v for k, v in conn.execute(
            SQL("dependent_rows"), {"start": i, "end": i, "ids": None, "delete": False}).mappings().one().items()
            if k != "written")]
        again = [i for i in ids if i not in kept]
        if again:
            keys = {"start": min(again), "end": max(again), "ids": again}
            conn.execute(SQL("downgrade"), keys)
            conn.execute(SQL("capture.forget_reports"), {"step": step.name, "ids": again})
            sequence = conn.execute(SQL("run.user_id_sequence")).scalar_one()
            step.migrate(conn, keys["start"], keys["end"], LAST_KEY, run_id, sequence, ids=again)
        if kept:
            conn.execute(SQL("capture.report_kept"), {"step": step.name, "ids": kept, "run_id": run_id})
    # Last: the rows it updates are the application's too (its settings and users), and their
    # row locks are held until this transaction commits, so they are taken after the slower work
    # on the moved groups, not before it.
    if taken["in_place"]:
        conn.execute(SQL("capture.update_in_place"), {"ids": taken["in_place"]})
    return len(taken["in_place"]) + len(taken["moved"])


STEP = UserSettingsToOrg()
