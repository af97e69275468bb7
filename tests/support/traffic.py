"""Other clients of a test's database, for the steering's tests: an application that commits a
small write every few milliseconds, and a watcher named as `orgmig status` names its sessions
(which the steering does not count as an application)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from sqlalchemy import Engine, text
from sqlalchemy.pool import NullPool

from app.batch.health import STATUS_APPLICATION
from app.db import make_engine


@contextlib.contextmanager
def application(engine: Engine, every_s: float = 0.05) -> Iterator[None]:
    """A client committing a one-row write every `every_s` seconds while the block runs."""
    stop = threading.Event()

    def traffic() -> None:
        with engine.connect() as conn:
            conn.execute(text("CREATE TEMP TABLE app_traffic (n int)"))
            conn.commit()
            while not stop.wait(every_s):
                conn.execute(text("INSERT INTO app_traffic VALUES (1)"))
                conn.commit()

    thread = threading.Thread(target=traffic, name="test-application")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def watcher(engine: Engine) -> Iterator[Engine]:
    """An engine on the same database whose sessions are named as `orgmig status`'s."""
    named = make_engine(engine.url, poolclass=NullPool, connect_args={"application_name": STATUS_APPLICATION})
    try:
        yield named
    finally:
        named.dispose()
