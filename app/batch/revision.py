"""What a revision calls: run a data step from inside `alembic upgrade`/`downgrade`, and read the
`-x` arguments through the one validation path (app.config)."""

from __future__ import annotations

import logging

from alembic import context, op
from app.batch.errors import MigrationError
from app.batch.options import X_ARGUMENTS, Options
from app.batch.runner import run_step
from app.batch.step import Step
from app.batch.summary import print_summary
from app.errors import OrgmigError

log = logging.getLogger("app")

# The config attribute env.py sets when the caller's connection was already in a transaction.
EXTERNAL_TRANSACTION = "orgmig_external_transaction"


def x_arguments() -> dict[str, str]:
    """`alembic -x name=value` arguments; an unknown name is a one-line error."""
    given = context.get_x_argument(as_dictionary=True)
    unknown = sorted(set(given) - set(X_ARGUMENTS))
    if unknown:
        raise SystemExit(f"alembic: unknown -x argument {unknown[0]!r}; known: {', '.join(X_ARGUMENTS)}")
    return given


def options() -> Options:
    """The run's options: settings from the environment with `-x` on top, validated."""
    try:
        return Options.from_settings(**x_arguments())
    except OrgmigError as exc:
        raise SystemExit(f"alembic: {exc}") from None


def allow_data_loss() -> bool:
    """True when the operator passed `-x allow_data_loss=true` (or ORGMIG_ALLOW_DATA_LOSS=true)."""
    return options().allow_data_loss


def run_data_step(step: Step, direction: str) -> None:
    """Run a data step from inside a revision: batches commit one by one on their own connections.

    Online, Alembic's transaction is committed first (autocommit block) so each batch is its own
    transaction. Offline (`--sql`) a data step cannot read rows; the script gets a statement that
    stops it with instructions instead of silently doing nothing.
    """
    ctx = op.get_context()
    if ctx.as_sql:
        op.execute(
            f"DO $$ BEGIN RAISE EXCEPTION 'orgmig: data step {step.name} ({direction}) moves rows in"
            " batches and runs online only: run alembic without --sql for this revision'; END $$"
        )
        return
    opts = options()
    bind = op.get_bind()
    # env.py notes when the caller handed over a connection inside its own transaction.
    if context.config.attributes.get(EXTERNAL_TRANSACTION):
        raise SystemExit(
            f"alembic: data step {step.name} needs to commit batch by batch, but the caller runs"
            " the migration inside its own transaction; pass an Engine or an idle Connection")
    try:
        with ctx.autocommit_block():
            result = run_step(bind.engine, step, direction, opts)
    except MigrationError as exc:
        log.error("%s", exc)
        raise SystemExit(f"alembic: {exc}") from None
    print_summary(result)
