"""The WAL a piece of work writes, split by what it is for: the contract's own rows and indexes,
the migration's bookkeeping (ledger, links, undo records, reports, capture), full-page images,
and the rest (catalog, commits, pruning). Read back with pg_walinspect (PostgreSQL 15+) from the
records between two LSNs, each record counted for the relation of its first block.

    with WalWindow(conn) as window:     # conn: AUTOCOMMIT, on the database the work writes to
        ...                             # the work, on other connections or processes
    split = window.split()              # WalSplit: bytes by kind and by table

The window holds a temporary physical replication slot while it is open, so a checkpoint during
the work cannot recycle the WAL before it is read: the role needs REPLICATION (or superuser) and
max_replication_slots > 0, and pg_walinspect is created in the database (CREATE EXTENSION).
Only this database's records count (and the commits of its transactions); other databases'
work on the same server is left out. Figures without the full-page images do not depend on
when checkpoints fall, so they are the same for the same work (tests compare them).
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection

from app.batch import SqlFiles

SQL = SqlFiles(Path(__file__).parent)

# The data contract's tables (DESIGN.md): what a migration is for.
CONTRACT_TABLES = frozenset({"role", "org", "user", "org_user", "settings", "user_identity", "facility",
                             "org_user_facility"})
# The steering's probe row and decisions (app.batch.pacer): written by the clock, not per user.
STEERING_TABLES = frozenset({"orgmig_steer", "orgmig_steer_decision"})
CONTRACT, BOOKKEEPING, STEERING, CATALOG, OTHER = "contract", "bookkeeping", "steering", "catalog", "other"
# The kinds a split reports, in this order.
KINDS = ("contract rows", "contract indexes", "bookkeeping rows", "bookkeeping indexes", "full-page images",
         "steering", "catalog", "transactions", "pruning and vacuum", "other")


def table_class(name: str | None, schema: str | None) -> str:
    """Which of CONTRACT, BOOKKEEPING, STEERING, CATALOG, OTHER a table is."""
    if name is None:
        return OTHER  # dropped since, or never a relation of this database
    if schema in ("pg_catalog", "information_schema"):
        return CATALOG
    if name in CONTRACT_TABLES:
        return CONTRACT
    if name in STEERING_TABLES:
        return STEERING
    if name.startswith("orgmig_"):
        return BOOKKEEPING
    return OTHER


@dataclass
class WalSplit:
    """WAL bytes of one window. `tables`: {(class, table, part): bytes} without full-page images,
    part `rows` (heap, TOAST, sequence) or `index`; `fpi`: {class: full-page image bytes}."""

    tables: dict[tuple[str, str, str], int] = field(default_factory=dict)
    fpi: dict[str, int] = field(default_factory=dict)
    transactions: int = 0
    maintenance: int = 0
    records: int = 0

    def kinds(self) -> dict[str, int]:
        """Bytes by KINDS."""
        out = dict.fromkeys(KINDS, 0)
        for (cls, _, part), n in self.tables.items():
            if cls in (CONTRACT, BOOKKEEPING):
                out[f"{cls} {'indexes' if part == 'index' else 'rows'}"] += n
            else:
                out[cls] += n
        out["full-page images"] = sum(self.fpi.values())
        out["transactions"] = self.transactions
        out["pruning and vacuum"] = self.maintenance
        return out

    @property
    def total(self) -> int:
        return sum(self.kinds().values())

    def of(self, cls: str) -> int:
        """Bytes without full-page images of the tables of one class, rows and indexes."""
        return sum(n for (c, _, _), n in self.tables.items() if c == cls)

    @property
    def bookkeeping_share(self) -> float:
        """The bookkeeping's bytes against the contract rows' own (rows and indexes, without
        full-page images on either side): the figure issue 20 holds under 0.25."""
        contract = self.of(CONTRACT)
        return self.of(BOOKKEEPING) / contract if contract else 0.0

    def by_table(self, cls: str) -> dict[str, dict[str, int]]:
        """{table: {"rows": bytes, "index": bytes}} of one class, largest first."""
        found: dict[str, dict[str, int]] = defaultdict(lambda: {"rows": 0, "index": 0})
        for (c, table, part), n in self.tables.items():
            if c == cls:
                found[table][part] += n
        return dict(sorted(found.items(), key=lambda kv: -sum(kv[1].values())))


class WalWindow:
    """The WAL written between entering and `stop` (or leaving), on the database of `conn`."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.slot = f"orgmig_wal_{os.getpid()}_{id(self) % 100000}"
        self.start: str | None = None
        self.end: str | None = None

    def __enter__(self) -> WalWindow:
        self.conn.execute(SQL("wal.install"))
        self.conn.execute(SQL("wal.reserve"), {"slot": self.slot})
        self.start = self.conn.execute(SQL("wal.insert_lsn")).scalar_one()
        return self

    def stop(self) -> None:
        """The window ends here (the work done, committed)."""
        if self.end is None:
            self.end = self.conn.execute(SQL("wal.insert_lsn")).scalar_one()

    def __exit__(self, *exc) -> None:
        self.stop()

    def split(self) -> WalSplit:
        """What the window's WAL was for (read while the slot still holds it), then the slot
        is dropped."""
        self.stop()
        try:
            return read_split(self.conn, self.start, self.end)
        finally:
            self.conn.execute(SQL("wal.release"), {"slot": self.slot})


def read_split(conn: Connection, start: str, end: str, wait_s: float = 10.0) -> WalSplit:
    """The records of conn's database between `start` and `end`, split (WalSplit). Waits up to
    `wait_s` for the WAL up to `end` to be flushed (pg_walinspect reads no further)."""
    deadline = time.monotonic() + wait_s
    while not conn.execute(SQL("wal.flushed"), {"lsn": end}).scalar_one() and time.monotonic() < deadline:
        time.sleep(0.05)
    rows = conn.execute(SQL("wal.records"), {"start": start, "end": end}).mappings().all()
    keys = [(r["spc"], r["filenode"]) for r in rows if r["filenode"] is not None]
    names = {}
    if keys:
        for r in conn.execute(SQL("wal.relations"), {"spaces": [s for s, _ in keys],
                                                     "filenodes": [f for _, f in keys]}).mappings():
            names[(r["spc"], r["filenode"])] = (r["table_name"], r["schema_name"], r["part"])
    split = WalSplit()
    tables: dict[tuple[str, str, str], int] = defaultdict(int)
    fpi: dict[str, int] = defaultdict(int)
    for r in rows:
        split.records += r["records"]
        if r["filenode"] is None:
            split.transactions += int(r["bytes"]) + int(r["fpi_bytes"])
            continue
        table, schema, part = names.get((r["spc"], r["filenode"]), (None, None, "rows"))
        cls = table_class(table, schema)
        fpi[cls] += int(r["fpi_bytes"])
        if r["maintenance"]:
            split.maintenance += int(r["bytes"])
        else:
            tables[(cls, table or f"filenode {r['filenode']}", part)] += int(r["bytes"])
    split.tables, split.fpi = dict(tables), dict(fpi)
    return split
