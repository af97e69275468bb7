"""The errors a person can act on. Each message is one line, safe to print (no password, no
token, no row value), saying what happened and what to do; `exit_code` is what `orgmig` and
`alembic` exit with when one ends the command."""

from __future__ import annotations


class OrgmigError(RuntimeError):
    exit_code = 1


class ConfigError(OrgmigError, ValueError):
    """A setting, an argument or a provider's configuration is missing or wrong."""

    exit_code = 2


class DatabaseError(OrgmigError):
    """The database cannot be reached or refused what was asked."""

    exit_code = 2
