"""Errors of the identity-provider export, each one line a person can act on.

Messages name the endpoint (method and path, no query string) and the HTTP status. They never
carry a token, a client secret or a private key: every message passes through `redact` first.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator

from app.errors import OrgmigError

_SECRETS: set[str] = set()
# Authorization header values and bearer-looking strings, in case a server echoes one back.
_AUTH_PATTERN = re.compile(r"(?i)\b(SSWS|Bearer|Basic|DPoP)\s+[A-Za-z0-9._~+/=-]{8,}")


def register_secret(value: str | None) -> None:
    """Remember a secret so `redact` hides it wherever it appears."""
    if value and len(value) >= 4:
        _SECRETS.add(value)
        for line in value.splitlines():
            if len(line.strip()) >= 16:
                _SECRETS.add(line.strip())


def redact(text: str) -> str:
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return _AUTH_PATTERN.sub(lambda m: f"{m.group(1)} ***", text)


class IdpError(OrgmigError):
    """An export failure explained in one line, safe to print (exit code 1: the export failed;
    running it again resumes it)."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class IdpHttpError(IdpError):
    """The provider answered with an error status or a body we cannot use. `code` is the
    provider's own error code where its body gives one (Okta's and Auth0's `errorCode`, an OAuth
    `error`)."""

    def __init__(self, method: str, endpoint: str, status: int | None, reason: str, *,
                 code: str | None = None) -> None:
        self.method = method
        self.endpoint = endpoint
        self.status = status
        self.reason = reason
        self.code = code
        where = f"{method} {endpoint}"
        what = f"returned {status}" if status is not None else "failed"
        super().__init__(f"{where} {what}: {reason}")


class IdpAuthError(IdpHttpError):
    """401 or 403: the credentials are wrong or lack a scope or role."""


class StaleCursorError(IdpHttpError):
    """The provider refused a page cursor it had handed out, as invalid or expired (Okta: 400
    E0000031 on an `after` cursor). A resumed listing whose checkpoint cursor is refused so starts
    again from its first page."""


class ForeignLinkError(IdpHttpError):
    """A stored page link (a checkpoint) outside the provider's base URL, which changed since:
    not followed, the token would go with it."""


class IdpConnectError(IdpError):
    """The provider's host cannot be reached at all (its name does not resolve, nothing listens on
    the port) before it ever answered: a setting to fix, not an outage to wait out (exit 2)."""

    exit_code = 2


class PaginationError(IdpError):
    """A cursor that repeats or a page sequence that never ends."""


class EndlessPagesError(PaginationError):
    """Empty pages that each hand out a fresh cursor, again and again: the cursors the provider
    handed out lately (the last page with items included) may lead nowhere."""


class SnapshotError(IdpError):
    """Writing the snapshot tables failed (the database went away or refused a write)."""


class RedactingFilter(logging.Filter):
    """Last line of defence: a log record never carries a registered secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


@contextlib.contextmanager
def guarded_logs() -> Iterator[None]:
    """While an export runs: every handler of the root logger redacts registered secrets, and the
    HTTP libraries' own per-request lines (URLs, pre-signed download links) stay out of the log."""
    flt = RedactingFilter()
    handlers = [h for h in logging.getLogger().handlers if not any(isinstance(f, RedactingFilter) for f in h.filters)]
    quiet = [logging.getLogger(name) for name in ("httpx", "httpcore")]
    levels = [lg.level for lg in quiet]
    for handler in handlers:
        handler.addFilter(flt)
    for lg in quiet:
        lg.setLevel(max(lg.level, logging.WARNING))
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(flt)
        for lg, level in zip(quiet, levels, strict=True):
            lg.setLevel(level)
