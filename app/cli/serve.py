"""`orgmig serve [--host 127.0.0.1] [--port 8080]`: the login-time service (app.service): an
identity provider's post-login hook, or the application, migrates or links one user now, and
offers and moves GeneNetwork's per-user collections. Callers authenticate with an access token of
the identity provider (ORGMIG_SERVE_JWT_*) or a static bearer token (ORGMIG_SERVE_TOKEN)."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from app import db
from app.cli.common import add_database_option, whole_number
from app.config import get_settings
from app.service import server


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve the login-time endpoints (POST /v1/users/migrate, collections)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", action=whole_number(1, 65535), default=8080, help="port (default 8080)")
    add_database_option(p)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    settings = get_settings()
    authenticate = server.from_settings(settings)
    engine = server.make_engine(args.database_url, settings)
    db.check_connection(engine)
    logging.getLogger("app.service").info("serving POST /v1/users/migrate on http://%s:%s (%s)", args.host,
                                          args.port, "provider tokens" if authenticate.jwt_check else "static token")
    try:
        uvicorn.Server(server.config(engine, authenticate, settings, args.host, args.port)).run()
    finally:
        engine.dispose()
    return 0
