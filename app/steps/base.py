"""What a data step is: its source key range, the set-based SQL for one batch in each direction,
what it prepares, what it refuses, what it reports.

The batch engine (app/engine.py) owns cursors, checkpoints, retries, timeouts, throttling,
progress and pause; a step owns only its SQL. Adding a data migration means writing one step and
one verification file.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from sqlalchemy import Connection


@dataclass(frozen=True)
class KeySource:
    """The keyset a direction walks: a table and its unique integer key column."""

    table: str
    key: str


@dataclass
class BatchResult:
    rows_read: int
    rows_written: int


class DowngradeRefused(RuntimeError):
    """A downgrade would delete rows it did not create; nothing was deleted."""


class Step(ABC):
    """Base class; subclasses set `name`, their key sources and `process`."""

    name: str = ""
    upgrade_keys: KeySource
    downgrade_keys: KeySource

    def keys(self, direction: str) -> KeySource:
        return self.upgrade_keys if direction == "upgrade" else self.downgrade_keys

    def prepare(self, conn: Connection, direction: str, run_id: int) -> None:
        """Runs once per engine run, in its own transaction, before the first batch."""

    def check_downgrade(self, conn: Connection, allow_data_loss: bool) -> None:
        """Raise DowngradeRefused when a downgrade would delete rows it did not create."""

    @abstractmethod
    def process(self, conn: Connection, direction: str, start: int, end: int, run_id: int,
                max_key: int, allow_data_loss: bool) -> BatchResult:
        """Move the keys start..end (inclusive) in one set-based statement chain."""

    def finish(self, conn: Connection, direction: str, run_id: int) -> None:
        """Runs in the transaction that marks the run finished."""

    def summary(self, conn: Connection, direction: str, run_id: int) -> dict:
        return {}
