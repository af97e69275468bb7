"""The batch engine: one generic loop (keyset claims, checkpoint, retry, timeouts, throttle,
progress, pause) and the protocol a data step implements. Steps, revisions, the CLI and the
operations' pages import from here only.

    from app.batch import Batch, BatchResult, KeySource, Step
"""

from app.batch import runs
from app.batch.attempts import Attempts, unless_broken
from app.batch.controller import rate_text
from app.batch.errors import ConcurrentChange, DowngradeRefused, MigrationError, Paused
from app.batch.family import StepFamily
from app.batch.health import STATUS_APPLICATION
from app.batch.ledger import RECORDED_SETTINGS
from app.batch.options import Options
from app.batch.revision import migration_lock
from app.batch.revision import settings as revision_settings
from app.batch.runner import join_step, run_step
from app.batch.sqlfile import SqlFiles
from app.batch.step import ALL_KEYS, FIRST_KEY, LAST_KEY, Batch, BatchResult, KeySource, Step
from app.batch.summary import RunFigures, RunResult, fmt_duration, fmt_rate, format_summary, run_figures

__all__ = [
    "ALL_KEYS", "FIRST_KEY", "LAST_KEY", "Attempts", "Batch", "BatchResult", "ConcurrentChange", "DowngradeRefused",
    "KeySource", "MigrationError", "Options", "Paused", "RunResult", "SqlFiles", "Step", "StepFamily", "format_summary",
    "join_step", "migration_lock", "run_step", "runs", "unless_broken",
    # for orgmig status and the run report
    "RECORDED_SETTINGS", "STATUS_APPLICATION", "RunFigures", "fmt_duration", "fmt_rate", "rate_text",
    "revision_settings", "run_figures",
]
