"""The door between the process that runs a step (app.batch.runner.Runner) and the workers it
starts (app.batch.crew) and their pacer (app.batch.pacer): what they may use of it, and nothing else."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from sqlalchemy import Connection, Engine

from app.batch.attempts import Attempts
from app.batch.ledger import Ledger
from app.batch.options import Options
from app.batch.step import KeySource, Step


class RunContext(Protocol):
    """What a crew (and its pacer) is given by the process that runs the step
    (app.batch.runner.Runner): the step and its direction, the options, the ledger, the retry
    policy, and how a connection and a batch's transaction are made."""

    engine: Engine
    step: Step
    direction: str
    keys: KeySource
    opts: Options
    ledger: Ledger
    attempts: Attempts
    label: str  # the step and direction, as log lines name them

    def connect(self) -> Connection: ...

    def tx(self, conn: Connection, statement_timeout_ms: int | None = None,
           **local: str) -> AbstractContextManager[Connection]: ...

    def paused_message(self, cursor: int | None, done: int, total: int) -> str: ...
