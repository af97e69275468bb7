"""The engine's ledger: `orgmig_run` and `orgmig_batch`, through the statements in sql/ledger.sql.

Every method takes the connection of a transaction the caller opened, so a batch's writes and
its `succeeded` mark commit together."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection

from app.batch.options import Options
from app.batch.sqlfile import SqlFiles
from app.batch.step import KeySource

SQL = SqlFiles(Path(__file__).parent / "sql")
LIVENESS_LOCK = SQL("ledger.liveness_lock")
# The options a run records (orgmig_run.settings) beside the workers it got, for `orgmig report`.
RECORDED_SETTINGS = ("batch_size", "pause_ms", "max_rows_per_second", "target_batch_ms", "lock_timeout_ms",
                     "statement_timeout_ms", "max_batch_attempts", "steer", "max_app_latency_ratio")


@dataclass(frozen=True)
class Run:
    id: int
    step: str
    direction: str
    min_key: int | None
    max_key: int | None
    cursor_key: int | None
    total_rows: int
    rows_done: int
    pause_requested: bool
    resumed: bool

    @classmethod
    def of(cls, row, resumed: bool) -> Run:
        return cls(row["id"], row["step"], row["direction"], row["min_key"], row["max_key"],
                   row["cursor_key"], row["total_rows"], row["rows_done"], row["pause_requested"],
                   resumed)


class Ledger:
    def __init__(self, step: str, direction: str, keys: KeySource, new_keys_only: bool = True) -> None:
        self.step = step
        self.direction = direction
        self.keys = keys
        self.new_keys_only = new_keys_only
        walk = {"table": keys.table, "key": keys.key, "scope": keys.scope}
        self._bounds = SQL("ledger.bounds", **walk)
        self._next_end = SQL("ledger.next_end", **walk)

    def _ids(self) -> dict:
        return {"step": self.step, "direction": self.direction}

    def find_open(self, conn: Connection) -> Run | None:
        """The unfinished run of this step and direction, as it is (nothing changed)."""
        row = conn.execute(SQL("ledger.open_run"), self._ids()).mappings().first()
        return None if row is None else Run.of(row, resumed=True)

    def has_open(self, conn: Connection) -> bool:
        """Whether an unfinished run of this step and direction waits to be resumed."""
        return conn.execute(SQL("ledger.open_run"), self._ids()).first() is not None

    def open(self, conn: Connection, batch_size: int) -> Run:
        """The unfinished run of this step and direction, resumed; else a new one over the keys
        there are now. A run in the other direction left unfinished is cancelled."""
        conn.execute(SQL("ledger.lock_step"), self._ids())
        row = conn.execute(SQL("ledger.open_run"), self._ids()).mappings().first()
        if row is not None:
            if not row["pause_requested"]:
                conn.execute(SQL("ledger.resume_run"), {"run_id": row["id"]})
            return Run.of(row, resumed=True)
        conn.execute(SQL("ledger.cancel_other_direction"), self._ids())
        lower = None
        if self.direction == "upgrade" and self.new_keys_only:
            # After a finished upgrade (and no downgrade since), only newer keys remain.
            last = conn.execute(SQL("ledger.last_finished"), self._ids()).mappings().first()
            if last and last["direction"] == "upgrade" and last["max_key"] is not None:
                lower = last["max_key"] + 1
        bounds = conn.execute(self._bounds, {**self.keys.params, "lower": lower}).mappings().one()
        row = conn.execute(SQL("ledger.insert_run"), {
            **self._ids(), "batch_size": batch_size, "min_key": bounds["min_key"],
            "max_key": bounds["max_key"], "total": bounds["total"],
        }).mappings().one()
        return Run.of(row, resumed=False)

    @staticmethod
    def rows_written(conn: Connection, run_id: int) -> int:
        return conn.execute(SQL("ledger.rows_written"), {"run_id": run_id}).scalar_one()

    @staticmethod
    def unfinished(conn: Connection, run_id: int) -> list[tuple[int, int]]:
        rows = conn.execute(SQL("ledger.unfinished_batches"), {"run_id": run_id}).all()
        return [(a, b) for a, b in rows]

    def claim(self, conn: Connection, run: Run, batch_size: int):
        """The range a worker takes next, locked for it (see app.batch.crew): a range left
        unfinished that nobody holds (its worker died or failed), else the next keyset range past
        the cursor, recorded `claimed`. "wait" while the only ranges left are held by other
        workers; None when every range is done; the run's state (a dict) when a pause was asked
        for (the run is marked paused). Claims are serialized by the run row's lock."""
        state = conn.execute(SQL("ledger.lock_cursor"), {"run_id": run.id}).mappings().one()
        if state["pause_requested"]:
            conn.execute(SQL("ledger.set_status"), {"run_id": run.id, "status": "paused", "error": None})
            return dict(state)
        left = self.unfinished(conn, run.id)
        for start, end in left:
            if self.hold(conn, run.id, start):
                if self.batch_status(conn, run.id, start) != "succeeded":
                    return start, end
                self.release(conn, run.id, start)  # finished in between
        cursor = state["cursor_key"]
        if run.max_key is not None and cursor < run.max_key:
            end = conn.execute(self._next_end, {**self.keys.params, "cursor": cursor,
                                                "max_key": run.max_key, "size": batch_size}).scalar_one()
            self.record(conn, run.id, cursor + 1, end, "claimed")
            conn.execute(SQL("ledger.advance_cursor"), {"run_id": run.id, "end_key": end, "batch_size": batch_size})
            self.hold(conn, run.id, cursor + 1)
            return cursor + 1, end
        return "wait" if left else None

    @staticmethod
    def hold(conn: Connection, run_id: int, start: int) -> bool:
        """Take the lock on the range starting at `start`; False when another worker has it."""
        return conn.execute(SQL("ledger.batch_lock"), {"run_id": run_id, "start_key": start}).scalar_one()

    @staticmethod
    def batch_status(conn: Connection, run_id: int, start: int) -> str | None:
        return conn.execute(SQL("ledger.batch_status"), {"run_id": run_id, "start_key": start}).scalar()

    @staticmethod
    def release(conn: Connection, run_id: int, start: int) -> None:
        conn.execute(SQL("ledger.batch_unlock"), {"run_id": run_id, "start_key": start})

    @staticmethod
    def join(conn: Connection, run_id: int, worker: bool = False) -> None:
        """This connection works on the run: it holds a share of the run's liveness lock (and,
        a worker's, of its worker lock)."""
        conn.execute(LIVENESS_LOCK, {"run_id": run_id})
        if worker:
            conn.execute(SQL("ledger.worker_lock"), {"run_id": run_id})
        conn.commit()

    @staticmethod
    def record(conn: Connection, run_id: int, start: int, end: int, status: str, *,
               rows_read: int = 0, rows_written: int = 0, attempts: int = 1,
               duration_ms: int | None = None, error: str | None = None) -> None:
        conn.execute(SQL("ledger.record_batch"), {
            "run_id": run_id, "start_key": start, "end_key": end, "status": status,
            "rows_read": rows_read, "rows_written": rows_written, "attempts": attempts,
            "duration_ms": duration_ms, "error": error,
        })

    @staticmethod
    def add_rows_done(conn: Connection, run_id: int, rows: int) -> None:
        conn.execute(SQL("ledger.add_rows_done"), {"run_id": run_id, "rows": rows})

    @staticmethod
    def set_status(conn: Connection, run_id: int, status: str | None, error: str | None) -> None:
        conn.execute(SQL("ledger.set_status"), {"run_id": run_id, "status": status, "error": error})

    @staticmethod
    def count_unfinished(conn: Connection, run_id: int) -> int:
        return conn.execute(SQL("ledger.count_unfinished"), {"run_id": run_id}).scalar_one()

    @staticmethod
    def record_settings(conn: Connection, run_id: int, options: Options, workers: int) -> None:
        """The workers this process runs the run with (the ones asked for, capped by the free
        connections) and its RECORDED_SETTINGS, in orgmig_run.settings."""
        if not conn.execute(SQL("ledger.has_settings")).scalar_one():
            return
        settings = {"workers": workers, **{name: getattr(options, name) for name in RECORDED_SETTINGS}}
        conn.execute(SQL("ledger.record_settings"), {"run_id": run_id, "settings": json.dumps(settings)})

    @staticmethod
    def finish(conn: Connection, run_id: int) -> None:
        conn.execute(SQL("ledger.finish_run"), {"run_id": run_id})

    def reported(self, conn: Connection) -> dict[str, int]:
        return {r: n for r, n in conn.execute(SQL("ledger.reported"), {"step": self.step}).all()}

