"""The clients of the identity providers the export reads: `REGISTRY` maps each name of
`app.provider_names.PROVIDERS` to its client class (checked below).

A client turns a provider's API into named streams of pages (`app.idp.pages`): the export loop
asks for the root streams, pages through each, and starts the streams a page discovers. Adding a
provider means writing one module here (settings class, client class), one line below and its
name in `app.provider_names`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import ClassVar, Protocol

from app.errors import ConfigError
from app.idp import config
from app.idp.config import ProviderSettings
from app.idp.http import HttpCore, RetryPolicy
from app.idp.pages import Stream
from app.idp.providers.auth0 import Auth0
from app.idp.providers.keycloak import Keycloak
from app.idp.providers.okta import Okta
from app.provider_names import PROVIDERS


class Provider(Protocol):
    """One export's client of one identity provider."""

    name: ClassVar[str]
    settings_class: ClassVar[type[ProviderSettings]]
    # Whether the API can list only what changed after a time. Where it cannot, the export is a
    # full one and the client is built without `since`.
    supports_since: ClassVar[bool]
    core: HttpCore  # the HTTP client, its rate limiter and its counters

    def __init__(self, settings, *, concurrency: int, retry: RetryPolicy,
                 since: datetime | None = None) -> None: ...

    def root_streams(self) -> list[str]:
        """The streams every export reads (the others are discovered by their pages)."""
        ...

    def stream(self, name: str) -> Stream:
        """The stream of that name, rebuilt from its name alone (a resumed export does this)."""
        ...


REGISTRY: dict[str, type[Provider]] = {cls.name: cls for cls in (Okta, Keycloak, Auth0)}
if tuple(REGISTRY) != PROVIDERS:
    raise RuntimeError(f"app.provider_names lists {PROVIDERS}; the registry has {tuple(REGISTRY)}")


def provider_class(name: str) -> type[Provider]:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown provider {name!r}: choose one of {', '.join(PROVIDERS)}") from None


def load_settings(name: str, env_file: str | Path | None = ".env") -> ProviderSettings:
    """The settings of one provider from the environment (and `.env`), or a ConfigError naming
    what is missing or wrong."""
    return config.load(name, provider_class(name).settings_class, env_file)
