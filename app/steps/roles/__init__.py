"""The roles a data step's memberships need, shared by the steps: created where missing and
recorded as the step's own (`orgmig_created_row`), so that the step's downgrade removes those and
only those, and leaves a role another step or the application still uses."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Connection

from app.batch import SqlFiles

log = logging.getLogger("app.steps.roles")

SQL = SqlFiles(Path(__file__).parent)

# Rank 1 is the most privileged; the names are those of the org schema's contract.
RANKS = {"admin": 1, "user": 1000, "entry_only": 2000}


def ensure_roles(conn: Connection, step: str, names: tuple[str, ...], *, warn: bool = True) -> None:
    """Create the roles `names` where missing, as `step`'s; a role that exists with another rank
    is left as it is and, with `warn`, named in a warning."""
    params = {"step": step, "names": list(names), "ranks": [RANKS[n] for n in names]}
    for name, expected, found in conn.execute(SQL("roles.ensure"), params).all():
        if warn:
            log.warning("role %r exists with rank %s (expected %s); left as it is", name, found, expected)


def remove_roles(conn: Connection, step: str) -> None:
    """Remove the roles `step` created, unless a membership still uses them."""
    conn.execute(SQL("roles.remove"), {"step": step})
