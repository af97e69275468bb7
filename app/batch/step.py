"""What a data step is: the keys it walks, the set-based SQL for one batch in each direction,
what it prepares, what it refuses, what it reports. The engine (app.batch.runner) owns every
other concern: claims, checkpoints, retries, timeouts, throttling, progress, pause.

Keys are one `bigint`-compatible column per table (an integer primary key, a surrogate identity
column where the natural key is text or composite, or a column many rows share, see KeySource),
optionally narrowed by a scope predicate; FIRST_KEY..LAST_KEY (ALL_KEYS) holds every key.
Integer keys keep the ledger typed, each claim one index probe (`ORDER BY key OFFSET n`), and
ranges printable; a table keyed by text gets a surrogate `bigint` identity column in its step's
schema revision rather than a second, slower kind of cursor.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

DIRECTIONS = ("upgrade", "downgrade")
# The bounds of every key (a bigint's): a statement written for a batch's range run over all keys.
FIRST_KEY = -(2**63)
LAST_KEY = 2**63 - 1
ALL_KEYS = {"start": FIRST_KEY, "end": LAST_KEY}


@dataclass(frozen=True)
class KeySource:
    """The keyset a direction walks: `table.key` (integer) where `scope` holds.

    The key need not be unique: a batch is a range of keys, `start..end` inclusive, and takes every
    row whose key is in it, so rows sharing a key are done together, once (the identity downgrade
    walks orgmig_identity_undo by user_id, one row per write to a user). A range holds at least
    the batch size's rows where there are as many left, more when its last key is shared.

    `scope` is a SQL predicate over the table with bind parameters from `params`, for a step
    that walks part of a table (one provider's rows of a snapshot, say)."""

    table: str
    key: str
    scope: str = "true"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Batch:
    """One claimed range of keys, `start..end` inclusive, and what the step's SQL may need."""

    run_id: int
    direction: str
    start: int
    end: int
    max_key: int
    allow_data_loss: bool
    state: Any = None  # what the step's prepare() returned for this run
    # The run is alone on its database (app.batch.pacer): no application writes meanwhile.
    alone: bool = False


@dataclass(frozen=True)
class BatchResult:
    rows_read: int
    rows_written: int


class Step(ABC):
    """A data step. Subclasses set `name`, `keys()`, `upgrade()` and `downgrade()`."""

    name: str = ""
    # `SET LOCAL name = value` for every batch transaction of this step (planner settings,
    # TimeZone), on top of the engine's own timeouts.
    batch_settings: dict[str, str] = {}
    # Tables whose planner statistics the engine refreshes after a finished run whose batches
    # wrote rows (best effort), so the application's first queries are planned for what is there now.
    analyze_after: tuple[str, ...] = ()
    # A new upgrade run after a finished one walks only the keys above that run's range (a source
    # that only grows, like user_settings). A step that plans its keys afresh each run says False.
    new_keys_only: bool = True

    @abstractmethod
    def keys(self, direction: str) -> KeySource:
        """The keyset `direction` walks."""

    def plan(self, conn: Connection, direction: str) -> None:
        """Runs before a new run opens (not when an unfinished one resumes), in its own
        transaction, without a statement timeout: a step whose keys depend on the data decides
        here what the run will walk; raising refuses the run, and nothing of the plan is kept."""
        return None

    def prepare(self, conn: Connection, direction: str, run_id: int) -> Any:
        """Runs once per run, in its own transaction, before the first batch; what it returns
        reaches every batch as `batch.state`."""
        return None

    def keys_ready(self, conn: Connection, direction: str, run_id: int, state: Any) -> None:
        """Runs in each claim's transaction, before the claim reads the keys (`state`: what
        prepare() returned): a step whose keys live in a table a server restart empties (UNLOGGED)
        fills it again here, so that a worker that outlived the restart claims ranges of the
        batch size rather than the rest of the run at once."""
        return None

    def batch_rows(self, state: Any, configured: int) -> int:
        """The rows a claim of this run takes (`state`: what prepare() returned), at least
        `configured` (ORGMIG_BATCH_SIZE): a step whose batches cost much per batch and little per
        row in this run may ask for more. The engine takes it only when no operator set a batch
        knob (a pause, a rows-a-second cap, a target batch duration), smaller near the end (the
        workers finish together), bounded by the pacer while paced; alone on the database the
        claims grow by themselves (app.batch.crew.AloneSize)."""
        return configured

    def check_downgrade(self, conn: Connection, allow_data_loss: bool) -> None:
        """Raise DowngradeRefused when a downgrade would delete rows it did not create."""
        return None

    @abstractmethod
    def upgrade(self, conn: Connection, batch: Batch) -> BatchResult:
        """Move the keys batch.start..batch.end, set-based, inside the batch's transaction."""

    @abstractmethod
    def downgrade(self, conn: Connection, batch: Batch) -> BatchResult:
        """Undo what upgrade() did for the keys batch.start..batch.end."""

    def drain(self, conn: Connection, direction: str, run_id: int) -> bool:
        """After the last batch, before finish: a step that captured the source's changes during
        the run applies a share of them, in one transaction; True while more remain."""
        return False

    def finish(self, conn: Connection, direction: str, run_id: int) -> None:
        """Runs in the transaction that marks the run finished."""
        return None

    def summary(self, conn: Connection, direction: str, run_id: int) -> dict[str, int]:
        """What a person reads at the end, `{label: count}` in display order. The engine adds
        the step's reported rows by reason (from orgmig_report) itself."""
        return {}
