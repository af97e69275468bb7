"""What a run can end in besides success. Every message is one line, safe to print (no row
values, no secrets), and says what to do next."""

from __future__ import annotations

from app.errors import OrgmigError


class MigrationError(OrgmigError):
    """A run stopped; the message says why and what to do."""


class Paused(MigrationError):
    """An operator asked the run to pause; it stopped between batches."""


class Interrupted(MigrationError):
    """SIGINT or SIGTERM stopped the run between batches; the same command resumes it. Exits with
    128 + the signal's number (130, 143), as the shell reports a command a signal ended."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class DowngradeRefused(MigrationError):
    """A downgrade would delete rows it did not create; nothing was deleted."""

    @classmethod
    def unless_allowed(cls, step: str, counts: dict[str, int], allow_data_loss: bool, why: str,
                       nothing: str = "deleted") -> None:
        """Refuse `step`'s downgrade when any of `counts` ({what: rows}) is not 0, unless
        `-x allow_data_loss=true`: `why` says what the application did to those rows."""
        found = {k: v for k, v in counts.items() if v}
        if found and not allow_data_loss:
            listing = ", ".join(f"{v:,} {k}" for k, v in found.items())
            raise cls(f"refusing to downgrade {step}: {why} ({listing}). Nothing was {nothing}. To delete"
                      " those rows too, run the downgrade again with -x allow_data_loss=true")


class ConcurrentChange(RuntimeError):
    """Another writer changed the rows a batch works on; the batch is rolled back and retried."""
