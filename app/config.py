"""Settings from the environment (and a `.env` file), validated once.

Every knob an operator may turn lives here, with the environment variable that sets it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Database
    database_url: SecretStr | None = Field(default=None, validation_alias="DATABASE_URL")
    alembic_ini: Path = Field(default=PROJECT_ROOT / "alembic.ini", validation_alias="ORGMIG_ALEMBIC_INI")

    # Batch engine
    batch_size: int = Field(default=500, ge=1, le=100_000, validation_alias="ORGMIG_BATCH_SIZE")
    lock_timeout_ms: int = Field(default=2_000, ge=1, validation_alias="ORGMIG_LOCK_TIMEOUT_MS")
    statement_timeout_ms: int = Field(default=60_000, ge=1, validation_alias="ORGMIG_STATEMENT_TIMEOUT_MS")
    max_batch_attempts: int = Field(default=5, ge=1, validation_alias="ORGMIG_MAX_BATCH_ATTEMPTS")
    pause_ms: int = Field(default=0, ge=0, validation_alias="ORGMIG_PAUSE_MS")
    workers: int = Field(default=3, ge=1, le=32, validation_alias="ORGMIG_WORKERS")
    # Verification reads whole tables (set differences, not samples): allow it longer.
    verify_timeout_ms: int = Field(default=600_000, ge=1, validation_alias="ORGMIG_VERIFY_TIMEOUT_MS")

    # Embedded PostgreSQL used by `orgmig demo` when no DATABASE_URL is set
    data_dir: Path = Field(default=Path(".orgmig"), validation_alias="ORGMIG_DATA_DIR")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
