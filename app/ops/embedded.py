"""An embedded PostgreSQL (the `pgserver` wheel: binaries inside, nothing downloaded), for
`orgmig demo` and for the tests when no other PostgreSQL is configured."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from sqlalchemy.engine import URL, make_url


class EmbeddedPostgres:
    """A PostgreSQL server living in `data_dir`; stopped by `stop()` or at interpreter exit."""

    def __init__(self, data_dir: Path, cleanup: str = "stop"):
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
            warnings.simplefilter("ignore")
            import pgserver  # imported here: only the embedded path needs it
        # pgserver logs every pg_ctl call at INFO; a person needs only its warnings.
        logging.getLogger("pgserver").setLevel(logging.WARNING)

        self.data_dir = Path(data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._server = pgserver.get_server(self.data_dir, cleanup_mode=cleanup)

    @property
    def url(self) -> URL:
        """A psycopg 3 URL to the server's `postgres` database (over its unix socket)."""
        return make_url(self._server.get_uri()).set(drivername="postgresql+psycopg")

    def stop(self) -> None:
        self._server.cleanup()
