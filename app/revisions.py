"""Helpers that revisions call: reading `-x` arguments and their environment equivalents."""

from __future__ import annotations

import os

from alembic import context

TRUE_WORDS = {"1", "true", "yes", "on"}


def x_argument(name: str, env: str | None = None, default: str | None = None) -> str | None:
    """The value of `alembic -x name=value`, else of the environment variable `env`."""
    value = context.get_x_argument(as_dictionary=True).get(name)
    if value is None and env:
        value = os.environ.get(env)
    return default if value is None else value


def allow_data_loss() -> bool:
    """True when the operator passed `-x allow_data_loss=true` (or ORGMIG_ALLOW_DATA_LOSS=true)."""
    return (x_argument("allow_data_loss", "ORGMIG_ALLOW_DATA_LOSS", "false") or "").lower() in TRUE_WORDS
