"""`orgmig serve [--host 127.0.0.1] [--port 8080]`: the login-time endpoint (app.service): an
identity provider's post-login hook, or the application, migrates one user now and gets the app's
ids back. Needs ORGMIG_SERVE_TOKEN, the bearer token callers present."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from app import db
from app.cli.common import add_database_option, whole_number
from app.config import get_settings
from app.errors import ConfigError
from app.service import create_app


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve the login-time migration endpoint (POST /v1/users/migrate)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", action=whole_number(1, 65535), default=8080, help="port (default 8080)")
    add_database_option(p)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    settings = get_settings()
    if settings.serve_token is None or len(settings.serve_token.get_secret_value().strip()) < 16:
        raise ConfigError("ORGMIG_SERVE_TOKEN is not set (or shorter than 16 characters): set the bearer token"
                          " callers must present, e.g. ORGMIG_SERVE_TOKEN=$(openssl rand -hex 32)")
    engine = db.make_engine(args.database_url, pool_size=10, max_overflow=10)
    db.check_connection(engine)
    app = create_app(engine, settings.serve_token.get_secret_value(), settings.serve_rate_per_minute)
    logging.getLogger("app.service").info("serving POST /v1/users/migrate on http://%s:%s", args.host, args.port)
    try:
        # uvicorn's access log names method, path and status only: never headers or bodies.
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        engine.dispose()
    return 0
