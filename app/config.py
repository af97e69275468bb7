"""Settings: every knob an operator may turn, with its default, its bounds and the environment
variable that sets it (a `.env` file works for all of them). The one other way in is `alembic -x
name=value`, validated here too (`with_overrides`); no other module reads `os.environ`.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.errors import ConfigError
from app.provider_names import PROVIDERS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore",
                                      populate_by_name=True)

    # Database
    database_url: SecretStr | None = Field(default=None, validation_alias="DATABASE_URL")
    alembic_ini: Path = Field(default=PROJECT_ROOT / "alembic.ini", validation_alias="ORGMIG_ALEMBIC_INI")

    # Batch engine (each also `alembic -x <name>=<value>`)
    batch_size: int = Field(default=500, ge=1, le=100_000, validation_alias="ORGMIG_BATCH_SIZE")
    workers: int = Field(default=3, ge=1, le=32, validation_alias="ORGMIG_WORKERS")
    lock_timeout_ms: int = Field(default=2_000, ge=1, validation_alias="ORGMIG_LOCK_TIMEOUT_MS")
    statement_timeout_ms: int = Field(default=60_000, ge=1, validation_alias="ORGMIG_STATEMENT_TIMEOUT_MS")
    max_batch_attempts: int = Field(default=5, ge=1, le=100, validation_alias="ORGMIG_MAX_BATCH_ATTEMPTS")
    # A revision whose statement cannot get its lock in time is run again, up to this many times
    # in all, each attempt waiting longer for its locks (app.batch.revision.with_lock_retries).
    ddl_lock_attempts: int = Field(default=8, ge=1, le=100, validation_alias="ORGMIG_DDL_LOCK_ATTEMPTS")
    pause_ms: int = Field(default=0, ge=0, le=3_600_000, validation_alias="ORGMIG_PAUSE_MS")
    # At most this many rows a second per process (0: no limit).
    max_rows_per_second: int = Field(default=0, ge=0, le=10_000_000, validation_alias="ORGMIG_MAX_ROWS_PER_SECOND")
    # Adapt the batch size towards batches of this duration (0: a fixed ORGMIG_BATCH_SIZE).
    target_batch_ms: int = Field(default=0, ge=0, le=600_000, validation_alias="ORGMIG_TARGET_BATCH_MS")
    # Steering (app.batch.pacer): the run holds its WAL rate to what keeps a synchronous commit
    # under this many times its cost before the run (off: nothing holds the run back, for a
    # maintenance window); the health probe commits every ORGMIG_STEER_PROBE_MS.
    steer: bool = Field(default=True, validation_alias="ORGMIG_STEER")
    max_app_latency_ratio: float = Field(default=2.0, ge=1.1, le=100, validation_alias="ORGMIG_MAX_APP_LATENCY_RATIO")
    steer_probe_ms: int = Field(default=200, ge=20, le=5_000, validation_alias="ORGMIG_STEER_PROBE_MS")
    backoff_base_ms: int = Field(default=200, ge=1, le=60_000, validation_alias="ORGMIG_BACKOFF_BASE_MS")
    backoff_cap_ms: int = Field(default=30_000, ge=1, le=600_000, validation_alias="ORGMIG_BACKOFF_CAP_MS")
    allow_data_loss: bool = Field(default=False, validation_alias="ORGMIG_ALLOW_DATA_LOSS")
    # The upgrade stops (exit 2) unless user_settings exists and holds rows (app.ops.wrong_database)
    require_legacy_rows: bool = Field(default=False, validation_alias="ORGMIG_REQUIRE_LEGACY_ROWS")
    # How long an `alembic upgrade`/`downgrade` waits for another one running on the same
    # database before it stops (0: stop at once, naming the one that runs).
    migrate_lock_wait_ms: int = Field(default=600_000, ge=0, le=86_400_000,
                                      validation_alias="ORGMIG_MIGRATE_LOCK_WAIT_MS")
    # Verification reads whole tables (set differences, not samples): allow it longer.
    verify_timeout_ms: int = Field(default=600_000, ge=1, validation_alias="ORGMIG_VERIFY_TIMEOUT_MS")

    # Identity-provider export (the providers' own settings: app.idp.config)
    export_concurrency: int = Field(default=8, ge=1, le=75, validation_alias="ORGMIG_EXPORT_CONCURRENCY")
    idp_retry_attempts: int = Field(default=8, ge=1, le=50, validation_alias="ORGMIG_IDP_RETRY_ATTEMPTS")
    idp_rate_limit_attempts: int = Field(default=40, ge=1, le=500,
                                         validation_alias="ORGMIG_IDP_RATE_LIMIT_ATTEMPTS")
    idp_backoff_base_seconds: float = Field(default=0.25, gt=0, le=60,
                                            validation_alias="ORGMIG_IDP_BACKOFF_BASE_SECONDS")
    idp_backoff_max_seconds: float = Field(default=20.0, gt=0, le=300,
                                           validation_alias="ORGMIG_IDP_BACKOFF_MAX_SECONDS")
    idp_request_timeout_seconds: float = Field(default=30.0, gt=0, le=600,
                                               validation_alias="ORGMIG_IDP_REQUEST_TIMEOUT_SECONDS")
    idp_deadline_seconds: float = Field(default=90.0, gt=0, le=3_600,
                                        validation_alias="ORGMIG_IDP_DEADLINE_SECONDS")

    # The identity data revision and `orgmig sync` (also `-x allow_mass_change=true`)
    idp_env: str = Field(default="PROD", pattern=r"^[A-Za-z0-9_]+$", validation_alias="ORGMIG_IDP_ENV")
    role_map: str = Field(default="", validation_alias="ORGMIG_ROLE_MAP")
    max_removed_fraction: float = Field(default=0.2, ge=0, le=1, validation_alias="ORGMIG_MAX_REMOVED_FRACTION")
    allow_mass_change: bool = Field(default=False, validation_alias="ORGMIG_ALLOW_MASS_CHANGE")
    # A user linked at several providers carries the status and profile values of the first of
    # these among them (comma-separated; unset or unlisted: the provider that linked it first)
    provider_priority: str = Field(default="", validation_alias="ORGMIG_PROVIDER_PRIORITY")

    # `orgmig writeback`: the attribute that receives the app's user id on the IdP account (unset:
    # `app_user_id` in Auth0's app_metadata, `appUserId` in Okta's profile and Keycloak's
    # attributes; app.writeback.attribute_for) and the writes in flight at most
    writeback_attribute: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$",
                                            validation_alias="ORGMIG_WRITEBACK_ATTRIBUTE")
    writeback_concurrency: int = Field(default=4, ge=1, le=75, validation_alias="ORGMIG_WRITEBACK_CONCURRENCY")

    # `orgmig serve` (app.service): who may call (access tokens from the identity provider, a
    # static bearer token, or both), each client's rate, the body cap, the proxies whose
    # X-Forwarded-For is believed, and the service's own database limits
    serve_token: SecretStr | None = Field(default=None, validation_alias="ORGMIG_SERVE_TOKEN")
    serve_jwt_issuer: str | None = Field(default=None, validation_alias="ORGMIG_SERVE_JWT_ISSUER")
    serve_jwt_audience: str | None = Field(default=None, validation_alias="ORGMIG_SERVE_JWT_AUDIENCE")
    serve_jwt_client_ids: str = Field(default="", validation_alias="ORGMIG_SERVE_JWT_CLIENT_IDS")
    serve_jwks_url: str | None = Field(default=None, validation_alias="ORGMIG_SERVE_JWKS_URL")
    serve_jwt_algorithms: str = Field(default="RS256", validation_alias="ORGMIG_SERVE_JWT_ALGORITHMS")
    serve_rate_per_minute: int = Field(default=600, ge=1, le=1_000_000, validation_alias="ORGMIG_SERVE_RATE_PER_MINUTE")
    serve_max_body_bytes: int = Field(default=65_536, ge=1_024, le=10_485_760,
                                      validation_alias="ORGMIG_SERVE_MAX_BODY_BYTES")
    serve_trusted_proxies: str = Field(default="", validation_alias="ORGMIG_SERVE_TRUSTED_PROXIES")
    serve_pool_size: int = Field(default=10, ge=1, le=200, validation_alias="ORGMIG_SERVE_POOL_SIZE")
    serve_pool_timeout_ms: int = Field(default=1_000, ge=1, le=60_000, validation_alias="ORGMIG_SERVE_POOL_TIMEOUT_MS")
    serve_lock_timeout_ms: int = Field(default=1_000, ge=1, le=600_000, validation_alias="ORGMIG_SERVE_LOCK_TIMEOUT_MS")
    serve_statement_timeout_ms: int = Field(default=5_000, ge=1, le=600_000,
                                            validation_alias="ORGMIG_SERVE_STATEMENT_TIMEOUT_MS")

    # Legacy user collections (`orgmig collections`): the Redis holding hashes `users` and `collections`
    redis_url: SecretStr = Field(default=SecretStr("redis://127.0.0.1:6379/0"), validation_alias="REDIS_URL")

    # Embedded PostgreSQL used by `orgmig demo` when no DATABASE_URL is set
    data_dir: Path = Field(default=Path(".orgmig"), validation_alias="ORGMIG_DATA_DIR")

    @field_validator("serve_trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in (p.strip() for p in value.split(",")):
            if part:
                try:
                    ipaddress.ip_network(part, strict=False)
                except ValueError:
                    raise ValueError(f"{part!r} is not an address or a network (e.g. 10.0.0.5, 10.0.0.0/8)") from None
        return value

    @field_validator("provider_priority")
    @classmethod
    def _providers(cls, value: str) -> str:
        names = [p.strip() for p in value.split(",") if p.strip()]
        if any(p not in PROVIDERS for p in names) or len(set(names)) != len(names):
            raise ValueError(f"must name providers of {', '.join(PROVIDERS)}, each once, separated by commas")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip().lower().startswith(REDIS_SCHEMES):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value


# The settings `alembic -x name=value` may set, validated like their environment variables.
X_ARGUMENTS = ("batch_size", "workers", "lock_timeout_ms", "statement_timeout_ms", "max_batch_attempts",
               "ddl_lock_attempts", "pause_ms", "max_rows_per_second", "target_batch_ms", "backoff_base_ms",
               "backoff_cap_ms", "allow_data_loss", "allow_mass_change", "max_removed_fraction",
               "require_legacy_rows", "steer", "max_app_latency_ratio", "steer_probe_ms")


_MESSAGES = {
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "bool_parsing": "must be true or false",
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be more than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
    "string_pattern_mismatch": "must match {pattern}",
}


def explain(exc: ValidationError, names: dict[str, str] | None = None) -> str:
    """A pydantic validation error as one line: each bad setting by the name a person typed,
    what it must be and what it got (never the value of a secret)."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = [str(x) for x in err.get("loc", ()) if x != "__root__"]
        if not loc:  # a rule over several settings: its message says which
            parts.append(err.get("msg", "invalid settings").removeprefix("Value error, "))
            continue
        where = (names or {}).get(loc[-1], loc[-1])
        if err.get("type") == "missing":
            parts.append(f"{where} is not set")
            continue
        template = _MESSAGES.get(err.get("type", ""))
        msg = template.format(**err.get("ctx", {})) if template else \
            err.get("msg", "is invalid").removeprefix("Value error, ")
        secret = any(w in where.lower() for w in ("secret", "token", "password", "key", "url"))
        got = err.get("input")
        if secret or got is None or isinstance(got, dict):
            parts.append(f"{where} {msg}")
        else:
            parts.append(f"{where} {msg}, got {str(got)[:60]!r}")
    return "; ".join(parts)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings from the environment and `.env`; a ConfigError (one line) when one is wrong."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(f"invalid setting: {explain(exc)}") from None


def with_overrides(overrides: dict[str, str], source: str = "-x") -> Settings:
    """The settings with some fields given explicitly (by field name, as `alembic -x name=value`
    gives them), validated with the same bounds as their environment variables."""
    if not overrides:
        return get_settings()
    unknown = sorted(set(overrides) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(f"unknown {source} argument {unknown[0]!r}")
    get_settings()  # the environment's own errors first, named by their variables
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        names = {name: f"{source} {name}" for name in overrides}
        raise ConfigError(f"invalid argument: {explain(exc, names)}") from None
