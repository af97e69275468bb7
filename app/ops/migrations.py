"""Alembic plumbing shared by the CLI, the demo and the tests: config, applied revisions."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from sqlalchemy import Connection
from sqlalchemy.engine import URL

from alembic import command
from app.batch import Step, StepFamily
from app.config import get_settings
from app.errors import ConfigError, DatabaseError


def alembic_config(url: URL | str | None = None, x_args: dict[str, str] | None = None) -> Config:
    """The project's Alembic config; `url` overrides DATABASE_URL for this config only."""
    ini = get_settings().alembic_ini
    if not Path(ini).is_file():
        raise ConfigError(f"alembic.ini not found at {ini} (set ORGMIG_ALEMBIC_INI)")
    cfg = Config(str(ini))
    if url is not None:
        rendered = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
        # env.py reads the URL from an attribute, never from the ini file.
        cfg.attributes["database_url"] = rendered
    if x_args:
        cfg.cmd_opts = _XArgs([f"{k}={v}" for k, v in x_args.items()])
    return cfg


class _XArgs:
    """What `alembic -x k=v` puts on the config, for programmatic runs."""

    def __init__(self, x: list[str]):
        self.x = x


def upgrade(cfg: Config, target: str = "head") -> None:
    command.upgrade(cfg, target)


def downgrade(cfg: Config, target: str) -> None:
    command.downgrade(cfg, target)


def script_directory(cfg: Config | None = None) -> ScriptDirectory:
    return ScriptDirectory.from_config(cfg or alembic_config())


def verify_dir(cfg: Config | None = None) -> Path:
    return Path(script_directory(cfg).dir) / "verify"


def current_heads(conn: Connection) -> tuple[str, ...]:
    return MigrationContext.configure(conn).get_current_heads()


def applied_revisions(conn: Connection, cfg: Config | None = None) -> list[str]:
    """Revision ids applied to the database, oldest first."""
    heads = current_heads(conn)
    if not heads:
        return []
    script = script_directory(cfg)
    try:
        revs = [r.revision for r in script.iterate_revisions(heads, "base")]
    except RevisionError:
        raise DatabaseError(
            f"the database is at revision {', '.join(heads)}, which this orgmig does not know:"
            " check DATABASE_URL, or use the orgmig version that migrated this database"
        ) from None
    return list(reversed(revs))


def data_steps(cfg: Config | None = None) -> dict[str, str]:
    """{step name: revision} for the revisions that run a data step (the revision module names
    its `Step`, or a `StepFamily` by its prefix), oldest first."""
    found: dict[str, str] = {}
    for revision, step in _steps(cfg):
        found[step.prefix if isinstance(step, StepFamily) else step.name] = revision
    return found


def _steps(cfg: Config | None) -> list[tuple[str, Step | StepFamily]]:
    """(revision, the step or step family it names), oldest first."""
    script = script_directory(cfg)
    return [(r.revision, value) for r in reversed(list(script.walk_revisions()))
            for value in vars(r.module).values() if isinstance(value, Step | StepFamily)]


def data_revisions(cfg: Config | None = None) -> list[str]:
    """Revisions that run a data step, oldest first."""
    return list(dict.fromkeys(data_steps(cfg).values()))


def step_named(name: str, settings, cfg: Config | None = None) -> Step:
    """The data step of that name, as its revision runs it (a family's step is built for the
    member its name ends with)."""
    for _, step in _steps(cfg):
        if isinstance(step, StepFamily) and (member := step.member(name)):
            return step.step(member, settings)
        if isinstance(step, Step) and step.name == name:
            return step
    raise ConfigError(f"no data step named {name!r}: the steps are {', '.join(data_steps(cfg))}")
