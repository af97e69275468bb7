"""Provider settings, read from the environment (and a `.env` file).

Secrets are `SecretStr`: their repr is `**********`, so printing a settings object never shows one.
Base URLs are full URLs (scheme and host), so a test can point them at a local server.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.errors import ConfigError

PROVIDERS = ("okta", "keycloak", "auth0")


def _base_url(value: str) -> str:
    value = value.strip().rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be a full URL starting with https:// (or http:// for a local server)")
    return value


class _ProviderSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    @field_validator("base_url", check_fields=False)
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        return _base_url(value)

    def secrets(self) -> list[str]:
        """Every secret value this configuration holds, for log redaction."""
        out = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                out.append(value.get_secret_value())
        return out


class OktaSettings(_ProviderSettings):
    """`OKTA_BASE_URL` plus either `OKTA_API_TOKEN` (SSWS) or an OAuth2 service app:
    `OKTA_CLIENT_ID` with `OKTA_PRIVATE_KEY` (PEM text) or `OKTA_PRIVATE_KEY_FILE`."""

    base_url: str = Field(validation_alias="OKTA_BASE_URL")
    api_token: SecretStr | None = Field(default=None, validation_alias="OKTA_API_TOKEN")
    client_id: str | None = Field(default=None, validation_alias="OKTA_CLIENT_ID")
    private_key: SecretStr | None = Field(default=None, validation_alias="OKTA_PRIVATE_KEY")
    private_key_file: Path | None = Field(default=None, validation_alias="OKTA_PRIVATE_KEY_FILE")
    private_key_id: str | None = Field(default=None, validation_alias="OKTA_PRIVATE_KEY_ID")
    scopes: str = Field(default="okta.users.read okta.groups.read", validation_alias="OKTA_SCOPES")

    @model_validator(mode="after")
    def _one_credential(self) -> OktaSettings:
        has_token = self.api_token is not None and bool(self.api_token.get_secret_value().strip())
        has_key = self.private_key is not None or self.private_key_file is not None
        if has_token and (self.client_id or has_key):
            raise ValueError("set either OKTA_API_TOKEN or OKTA_CLIENT_ID with OKTA_PRIVATE_KEY(_FILE), not both")
        if not has_token:
            if not self.client_id:
                raise ValueError("set OKTA_API_TOKEN, or OKTA_CLIENT_ID with OKTA_PRIVATE_KEY or OKTA_PRIVATE_KEY_FILE")
            if not has_key:
                raise ValueError("OKTA_CLIENT_ID needs OKTA_PRIVATE_KEY or OKTA_PRIVATE_KEY_FILE")
        return self

    @property
    def uses_oauth(self) -> bool:
        return self.api_token is None

    def private_key_pem(self) -> str:
        if self.private_key is not None:
            return self.private_key.get_secret_value()
        assert self.private_key_file is not None
        try:
            return self.private_key_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read OKTA_PRIVATE_KEY_FILE {self.private_key_file}: {exc.strerror}") from None

    def secrets(self) -> list[str]:
        out = super().secrets()
        if self.private_key_file is not None and self.private_key is None:
            try:
                out.append(self.private_key_file.read_text(encoding="utf-8"))
            except OSError:
                pass
        return out


class KeycloakSettings(_ProviderSettings):
    """A confidential client with a service account holding realm-management roles
    `view-users` and `query-groups` (and `view-realm` for roles, `manage-realm` for organizations)."""

    base_url: str = Field(validation_alias="KEYCLOAK_BASE_URL")
    realm: str = Field(validation_alias="KEYCLOAK_REALM")
    client_id: str = Field(validation_alias="KEYCLOAK_CLIENT_ID")
    client_secret: SecretStr = Field(validation_alias="KEYCLOAK_CLIENT_SECRET")
    token_realm: str | None = Field(default=None, validation_alias="KEYCLOAK_TOKEN_REALM")


class Auth0Settings(_ProviderSettings):
    """A machine-to-machine application authorised for the Management API (audience
    `<AUTH0_BASE_URL>/api/v2/`)."""

    base_url: str = Field(validation_alias="AUTH0_BASE_URL")
    client_id: str = Field(validation_alias="AUTH0_CLIENT_ID")
    client_secret: SecretStr = Field(validation_alias="AUTH0_CLIENT_SECRET")
    audience: str | None = Field(default=None, validation_alias="AUTH0_AUDIENCE")

    @property
    def api_audience(self) -> str:
        return self.audience or f"{self.base_url}/api/v2/"


class ExportTuning(_ProviderSettings):
    """Retry and timeout knobs of the export's HTTP client (defaults suit the providers' APIs)."""

    retry_attempts: int = Field(default=8, ge=1, le=50, validation_alias="ORGMIG_IDP_RETRY_ATTEMPTS")
    backoff_max_seconds: float = Field(default=20.0, gt=0, le=300, validation_alias="ORGMIG_IDP_BACKOFF_MAX_SECONDS")
    request_timeout_seconds: float = Field(default=30.0, gt=0, le=600,
                                           validation_alias="ORGMIG_IDP_REQUEST_TIMEOUT_SECONDS")


def load_tuning(env_file: str | Path | None = ".env") -> ExportTuning:
    try:
        return ExportTuning(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigError(f"export settings: {_explain(exc)}") from None


SETTINGS_CLASSES: dict[str, type[_ProviderSettings]] = {
    "okta": OktaSettings,
    "keycloak": KeycloakSettings,
    "auth0": Auth0Settings,
}


def load(provider: str, env_file: str | Path | None = ".env") -> _ProviderSettings:
    """The settings of one provider, or a ConfigError naming what is missing or wrong."""
    try:
        cls = SETTINGS_CLASSES[provider]
    except KeyError:
        raise ConfigError(f"unknown provider {provider!r}: choose one of {', '.join(PROVIDERS)}") from None
    try:
        return cls(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigError(f"{provider} configuration: {_explain(exc)}") from None


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = [str(x) for x in err.get("loc", ()) if x != "__root__"]
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        if err.get("type") == "missing":
            parts.append(f"{loc[-1] if loc else 'a setting'} is not set")
        elif loc:
            parts.append(f"{loc[-1]} {msg}")
        else:
            parts.append(msg)
    return "; ".join(parts)
