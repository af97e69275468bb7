"""Running orgmig and alembic against an identity test's database: `export(url, provider, fake)`,
`cli(url, "sync", ...)` (`orgmig` in this process), `alembic(url, ...)` and `alembic_process(url,
...)` (alembic in a process of its own), with the tests' environment and role map;
`downgrade_restores(url, engine, before)`: `alembic downgrade 0006` puts back every table the
step touched as `before` (a fingerprint) had them."""

from __future__ import annotations

import subprocess

from sqlalchemy import Engine
from sqlalchemy.engine import URL

from tests.support.identity.cast import ENV, ROLE_MAP
from tests.support.identity.probes import fingerprint
from tests.support.idp import Outcome, command_env, run_export, run_orgmig
from tests.support.migrate import run_alembic, start_alembic


def export(url: URL, provider: str, fake, code: int = 0, **env: str) -> Outcome:
    """`orgmig export --provider P` in this process, pointed at the fake (`env` on top of its
    settings); it must exit with `code`."""
    with command_env({**fake.settings(), **env}):
        out = run_export(url, "--provider", provider)
    assert out.code == code, out.everything[-3000:]
    return out


def cli(url: URL, *args: str, **env: str) -> Outcome:
    """`orgmig ARGS --database-url URL` in this process, with ORGMIG_ROLE_MAP (and `env`) set."""
    with command_env({"ORGMIG_ROLE_MAP": ROLE_MAP, "ORGMIG_IDP_ENV": ENV, **env}, clear=()):
        return run_orgmig(*args, "--database-url", url.render_as_string(hide_password=False))


def alembic(url: URL, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`alembic -c alembic.ini ARGS` in a process of its own, as a deploy pipeline runs it."""
    return run_alembic(url, *args, ORGMIG_ROLE_MAP=ROLE_MAP, ORGMIG_IDP_ENV=ENV, **env)


def alembic_process(url: URL, *args: str, **env: str) -> subprocess.Popen:
    """The same, started and left running (to be killed)."""
    return start_alembic(url, *args, stdout=subprocess.PIPE, ORGMIG_ROLE_MAP=ROLE_MAP, ORGMIG_IDP_ENV=ENV, **env)



def downgrade_restores(url: URL, engine: Engine, before: dict[str, tuple]) -> None:
    """`alembic downgrade 0006` succeeds and leaves every table the step touches as `before`."""
    down = alembic(url, "downgrade", "0006")
    assert down.returncode == 0, down.stderr[-3000:]
    assert fingerprint(engine) == before
