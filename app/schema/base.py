"""The metadata every table is defined on, its naming convention and shared column shapes."""

from __future__ import annotations

import sqlalchemy as sa

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

NOW = sa.text("now()")
TSTZ = sa.DateTime(timezone=True)

MEMBER_STATUSES = ("active", "invited", "pending", "disabled")


def in_values(column: str, values: tuple[str, ...]) -> str:
    """`column IN ('a', 'b')`: the sa.text of a CHECK constraint over fixed values."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def status_check() -> sa.CheckConstraint:
    return sa.CheckConstraint(in_values("status", MEMBER_STATUSES), name="status_valid")


def timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", TSTZ, nullable=False, server_default=NOW),
        sa.Column("updated_at", TSTZ, nullable=False, server_default=NOW),
    ]
