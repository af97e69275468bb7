"""`orgmig serve` put together: the service's connection pool (its own lock and statement
timeouts, a short wait for a free connection), the authenticator, the application, and uvicorn
with proxy headers off (app.service.guard reads them, and only from the proxies listed)."""

from __future__ import annotations

import uvicorn
from sqlalchemy import Engine

from app import db
from app.config import Settings
from app.service.app import Limits, create_app
from app.service.auth import Authenticator, from_settings
from app.service.collections import Store


def make_engine(url, settings: Settings) -> Engine:
    options = (f"-c lock_timeout={settings.serve_lock_timeout_ms}"
               f" -c statement_timeout={settings.serve_statement_timeout_ms}")
    # No ping before each checkout (a round trip per call): a connection the server closed fails
    # its call with a 503, and SQLAlchemy then replaces the pool's connections.
    return db.make_engine(url, pool_size=settings.serve_pool_size, max_overflow=0, pool_pre_ping=False,
                          pool_timeout=settings.serve_pool_timeout_ms / 1000, connect_args={"options": options})


def limits(settings: Settings) -> Limits:
    return Limits(per_minute=settings.serve_rate_per_minute, max_body_bytes=settings.serve_max_body_bytes,
                  trusted_proxies=settings.serve_trusted_proxies)


def config(engine: Engine, authenticate: Authenticator, settings: Settings, host: str, port: int) -> uvicorn.Config:
    app = create_app(engine, authenticate, Store(settings.redis_url.get_secret_value()), limits(settings))
    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, proxy_headers=False,
                          server_header=False, limit_concurrency=settings.serve_pool_size * 20)


__all__ = ["config", "from_settings", "limits", "make_engine"]
