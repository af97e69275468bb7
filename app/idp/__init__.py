"""Identity-provider export: read users, groups, organizations, roles and memberships out of
Okta, Keycloak or Auth0 into snapshot tables, so a migration never talks to the network inside a
database transaction.

The public API:
- `export(provider, engine, since=None, concurrency=None)` -> `ExportResult`: one export, resumed
  where an earlier one of the same provider stopped;
- `PROVIDERS`: the provider names, from the registry in `app.idp.providers`;
- `load_settings(provider)`: a provider's settings from the environment;
- `IdpError`: an export that failed (exit code 1); configuration problems are
  `app.errors.ConfigError` and a database that is not ready `app.errors.DatabaseError`.
"""

from app.idp.errors import IdpError
from app.idp.export import ExportResult, export
from app.idp.providers import PROVIDERS, load_settings

__all__ = ["PROVIDERS", "ExportResult", "IdpError", "export", "load_settings"]
