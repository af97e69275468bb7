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


def _int_argument(name: str, env: str) -> int | None:
    raw = x_argument(name, env)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"alembic: -x {name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise SystemExit(f"alembic: -x {name} must be at least 1, got {value}")
    return value


def run_data_step(step, direction: str) -> None:
    """Run a data step from inside a revision: batches commit one by one on their own connection.

    Online, Alembic's transaction is committed first (autocommit block) so each batch is its own
    transaction. Offline (`--sql`) a data step cannot read rows; the script gets a statement that
    stops it with instructions instead of silently doing nothing.
    """
    import logging

    from alembic import op

    from app.engine import MigrationError, Options, run_step
    from app.steps.base import DowngradeRefused
    from app.summary import print_summary

    ctx = op.get_context()
    if ctx.as_sql:
        op.execute(
            "DO $$ BEGIN RAISE EXCEPTION 'orgmig: data step %s (%s) moves rows in batches and runs"
            " online only: run alembic without --sql for this revision'; END $$"
            % (step.name, direction)
        )
        return
    options = Options.from_settings(
        batch_size=_int_argument("batch_size", "ORGMIG_BATCH_SIZE"),
        workers=_int_argument("workers", "ORGMIG_WORKERS"),
        allow_data_loss=allow_data_loss(),
    )
    bind = op.get_bind()
    if getattr(ctx, "_in_external_transaction", False):
        raise SystemExit(
            "alembic: data step %s needs to commit batch by batch, but the caller runs the"
            " migration inside its own transaction; pass an Engine or an idle Connection" % step.name
        )
    try:
        with ctx.autocommit_block():
            result = run_step(bind.engine, step, direction, options)
    except (MigrationError, DowngradeRefused) as exc:
        logging.getLogger("app").error("%s", exc)
        raise SystemExit(f"alembic: {exc}") from None
    print_summary(result)
