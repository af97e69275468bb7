"""How a run behaves: taken from the settings (environment, `.env`) with `alembic -x` on top,
validated in one place (app.config) with the same bounds either way."""

from __future__ import annotations

from dataclasses import dataclass, fields

from app.config import Settings, get_settings, with_overrides


@dataclass(frozen=True)
class Options:
    batch_size: int
    workers: int
    lock_timeout_ms: int
    statement_timeout_ms: int
    max_batch_attempts: int
    pause_ms: int
    max_rows_per_second: int
    target_batch_ms: int
    backoff_base_ms: int
    backoff_cap_ms: int
    allow_data_loss: bool
    progress_bar: bool | None = None  # None: a bar on a terminal, log lines otherwise
    # Steering (app.batch.pacer); the defaults are the settings' defaults.
    steer: bool = True
    max_app_latency_ratio: float = 2.0
    steer_probe_ms: int = 200

    @classmethod
    def from_settings(cls, settings: Settings | None = None, *, progress_bar: bool | None = None,
                      **x_args: str) -> Options:
        """Options from `settings` (default: the environment's), with `x_args` (`alembic -x`
        values, by setting name) validated on top."""
        s = with_overrides({k: v for k, v in x_args.items() if v is not None}) if x_args \
            else settings or get_settings()
        values = {f.name: getattr(s, f.name) for f in fields(cls) if f.name != "progress_bar"}
        return cls(**values, progress_bar=progress_bar)

