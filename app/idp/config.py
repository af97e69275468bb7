"""Provider settings, read from the environment (and a `.env` file).

Secrets are `SecretStr`: their repr is `**********`, so printing a settings object never shows one.
Base URLs are full URLs (scheme and host), so a test can point them at a local server. The
export's own knobs (concurrency, retries, timeouts) are fields of `app.config.Settings`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.config import explain
from app.errors import ConfigError

__all__ = ["Auth0Settings", "ConfigError", "KeycloakSettings", "OktaSettings", "ProviderSettings", "load"]


def _base_url(value: str) -> str:
    value = value.strip().rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be a full URL starting with https:// (or http:// for a local server)")
    return value


class ProviderSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")
    # A base URL that ends in one of the API's own paths (copied from an endpoint or an issuer):
    # the clients add those paths themselves, so it is refused, naming the value to set.
    API_PATH: ClassVar[re.Pattern | None] = None

    @field_validator("base_url", check_fields=False)
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        value = _base_url(value)
        found = cls.API_PATH.search(value) if cls.API_PATH is not None else None
        if found:
            variable = cls.model_fields["base_url"].validation_alias
            fix = f"{variable}={value[:found.start()]}"
            if found.groupdict().get("realm"):
                fix += f" (and KEYCLOAK_REALM={found.group('realm')})"
            raise ValueError(f"ends in the API path {found.group(0)!r}, which orgmig adds itself: set {fix}")
        return value

    def check(self) -> None:
        """Rules across settings that are each valid on their own; a ValueError names what to set.
        (Kept out of pydantic: its errors for a whole model carry no setting name to report.)"""

    def secrets(self) -> list[str]:
        """Every secret value this configuration holds, for log redaction."""
        out = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                out.append(value.get_secret_value())
        return out


class OktaSettings(ProviderSettings):
    """`OKTA_BASE_URL` plus either `OKTA_API_TOKEN` (SSWS) or an OAuth2 service app:
    `OKTA_CLIENT_ID` with `OKTA_PRIVATE_KEY` (PEM text) or `OKTA_PRIVATE_KEY_FILE`."""

    API_PATH = re.compile(r"/(api/v\d+|oauth2)(/.*)?$")
    base_url: str = Field(validation_alias="OKTA_BASE_URL")
    api_token: SecretStr | None = Field(default=None, validation_alias="OKTA_API_TOKEN")
    client_id: str | None = Field(default=None, validation_alias="OKTA_CLIENT_ID")
    private_key: SecretStr | None = Field(default=None, validation_alias="OKTA_PRIVATE_KEY")
    private_key_file: Path | None = Field(default=None, validation_alias="OKTA_PRIVATE_KEY_FILE")
    private_key_id: str | None = Field(default=None, validation_alias="OKTA_PRIVATE_KEY_ID")
    scopes: str = Field(default="okta.users.read okta.groups.read", validation_alias="OKTA_SCOPES")

    def check(self) -> None:
        has_token = self.api_token is not None and bool(self.api_token.get_secret_value().strip())
        has_key = self.private_key is not None or self.private_key_file is not None
        if has_token and (self.client_id or has_key):
            raise ValueError("set either OKTA_API_TOKEN or OKTA_CLIENT_ID with OKTA_PRIVATE_KEY(_FILE), not both")
        if not has_token:
            if not self.client_id:
                raise ValueError("set OKTA_API_TOKEN, or OKTA_CLIENT_ID with OKTA_PRIVATE_KEY or OKTA_PRIVATE_KEY_FILE")
            if not has_key:
                raise ValueError("OKTA_CLIENT_ID needs OKTA_PRIVATE_KEY or OKTA_PRIVATE_KEY_FILE")

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


class KeycloakSettings(ProviderSettings):
    """A confidential client with a service account holding realm-management roles
    `view-users` and `query-groups` (and `view-realm` for roles, `manage-realm` for organizations)."""

    # The server's URL (with its relative path, e.g. /auth, on Keycloak before 17), not a realm's.
    API_PATH = re.compile(r"/(admin(/realms)?|realms)(/(?P<realm>[^/]+))?(/.*)?$")
    base_url: str = Field(validation_alias="KEYCLOAK_BASE_URL")
    realm: str = Field(validation_alias="KEYCLOAK_REALM")
    client_id: str = Field(validation_alias="KEYCLOAK_CLIENT_ID")
    client_secret: SecretStr = Field(validation_alias="KEYCLOAK_CLIENT_SECRET")
    token_realm: str | None = Field(default=None, validation_alias="KEYCLOAK_TOKEN_REALM")


class Auth0Settings(ProviderSettings):
    """A machine-to-machine application authorised for the Management API (audience
    `<AUTH0_BASE_URL>/api/v2/`)."""

    API_PATH = re.compile(r"/(api/v2|oauth|userinfo)(/.*)?$")
    base_url: str = Field(validation_alias="AUTH0_BASE_URL")
    client_id: str = Field(validation_alias="AUTH0_CLIENT_ID")
    client_secret: SecretStr = Field(validation_alias="AUTH0_CLIENT_SECRET")
    audience: str | None = Field(default=None, validation_alias="AUTH0_AUDIENCE")

    @property
    def api_audience(self) -> str:
        return self.audience or f"{self.base_url}/api/v2/"


S = TypeVar("S", bound=ProviderSettings)


def checked(provider: str, settings: S) -> S:
    """`settings` after its cross-setting rules, or a ConfigError naming what to set."""
    try:
        settings.check()
    except ValueError as exc:
        raise ConfigError(f"{provider} configuration: {exc}") from None
    return settings


def load(provider: str, cls: type[S], env_file: str | Path | None = ".env") -> S:
    """The settings of one provider from the environment, or a ConfigError naming what is
    missing or wrong."""
    try:
        settings = cls(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigError(f"{provider} configuration: {explain(exc)}") from None
    return checked(provider, settings)
