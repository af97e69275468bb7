"""How each identity provider is told the app's user id, touching nothing else on the account.

- Auth0: `PATCH /api/v2/users/{id}` with `{"app_metadata": {ATTR: "42"}}`. Auth0 merges the root
  keys of `app_metadata` (nested objects would be replaced whole), so a flat key leaves every
  other key as it was. Never the bulk import job: with `upsert` it replaces `app_metadata` whole.
- Okta: `POST /api/v1/users/{id}` with the hand-built `{"profile": {ATTR: "42"}}`, a partial
  update (never PUT, which sets every profile property it is not given to null). The attribute
  must be a custom string property of the user schema: `prepare` reads
  `GET /api/v1/meta/schemas/user/default` once and stops, naming it, when it is not.
- Keycloak: `GET /admin/realms/{realm}/users/{id}` (the full representation), merge
  `attributes[ATTR] = ["42"]`, `PUT` it all back (a PUT drops what it omits), then `GET` again. From
  Keycloak 24 an attribute the realm's user profile does not declare is dropped in silence (the
  PUT still answers 204): the re-read notices and the write-back stops, saying what to declare.

Each `write` answers "written" or "present" (the live account held the value already) and raises
the HTTP core's one-line errors; a 404 whose answer says the user does not exist (each target's
`GONE`: Auth0's `inexistent_user`, Okta's "(User)" resource, Keycloak's "User not found") is
`is_gone`: the account was deleted at the provider, which no rerun changes; `AttributeDropped`
and a `ConfigError` from `prepare` stop the whole run. Requests go through app.idp.http.HttpCore:
rate-limit headers read, 429 waited out, 5xx and timeouts retried, tokens fetched and renewed.
"""

from __future__ import annotations

from typing import ClassVar, Protocol
from urllib.parse import quote

from app.errors import ConfigError
from app.idp.config import Auth0Settings, KeycloakSettings, OktaSettings, ProviderSettings
from app.idp.errors import IdpAuthError, IdpHttpError
from app.idp.http import HttpCore, RetryPolicy
from app.idp.providers import auth0, keycloak, okta

BUCKET = "user-write"  # rate-limit state of the write endpoint, apart from the token's


class OneRequestWrite:
    """A target whose write is one request setting `HOLDER.<attribute>` (WRITE: method, path with
    `{id}`, holder), checked in the user it returns: a provider that drops what it does not know
    answers 200 all the same. Hand-built: the one property, nothing else (an explicit null would
    clear a property)."""

    WRITE: tuple[str, str, str]
    NEED_WRITE: str
    core: HttpCore
    attribute: str

    async def write(self, external_id: str, value: str) -> str:
        method, path, holder = self.WRITE
        reply = await self.core.request(method, path.format(id=quote(external_id, safe="")), bucket=BUCKET,
                                        json_body={holder: {self.attribute: value}}, need=self.NEED_WRITE)
        body = reply.body if isinstance(reply.body, dict) else {}
        held = (body.get(holder) or {}).get(self.attribute)
        if held != value:
            raise IdpHttpError(method, reply.path, reply.status,
                               f"the user it returned has {holder}.{self.attribute} = {held!r}, not {value!r}")
        return "written"


class AttributeDropped(ConfigError):
    """The provider accepted the write and did not keep it (Keycloak's user profile)."""


class Target(Protocol):
    name: ClassVar[str]
    default_attribute: ClassVar[str]
    GONE: ClassVar[str]  # what the provider's 404 says when the user does not exist
    CHECKS: ClassVar[bool]  # whether there is anything for `check` to read (Auth0: nothing)
    core: HttpCore

    @classmethod
    def check_attribute(cls, attribute: str) -> None:
        """A ConfigError when the provider cannot hold the app's id under that name."""
        ...

    async def prepare(self) -> None:
        """Checks made once before the first write (a ConfigError stops the run)."""
        ...

    async def check(self) -> str:
        """`--dry-run`'s read-only look at where the value lands (targets whose CHECKS is true):
        what it found, or a ConfigError with the fix when the real run would stop at once."""
        ...

    async def write(self, external_id: str, value: str) -> str:
        """Set the value on one account: "written", or "present" when it held it already."""
        ...


def is_gone(target: Target, exc: IdpHttpError) -> bool:
    """The provider answered that the account does not exist (deleted there since the export),
    not that a path or a realm is wrong (those 404s say something else)."""
    return exc.status == 404 and type(target).GONE in str(exc)


def _refuse(provider: str, attribute: str, why: str) -> None:
    raise ConfigError(f"ORGMIG_WRITEBACK_ATTRIBUTE={attribute} cannot hold the app's user id in {provider}: {why}")


class Auth0Target(OneRequestWrite):
    name = "auth0"
    default_attribute = "app_user_id"
    GONE = "inexistent_user"
    CHECKS = False
    # Keys Auth0 refuses in app_metadata (its bulk-import schema lists them).
    RESERVED = frozenset({"__tenant", "_id", "blocked", "clientID", "created_at", "email_verified", "email",
                          "globalClientID", "global_client_id", "identities", "lastIP", "lastLogin", "loginsCount",
                          "metadata", "multifactor_last_modified", "multifactor", "updated_at", "user_id"})
    NEED_WRITE = "scope update:users (or update:users_app_metadata)"
    WRITE = ("PATCH", "/api/v2/users/{id}", "app_metadata")

    def __init__(self, settings: Auth0Settings, attribute: str, *, concurrency: int, retry: RetryPolicy) -> None:
        self.check_attribute(attribute)
        self.attribute = attribute
        self.core = auth0.make_core(settings, concurrency, retry)

    @classmethod
    def check_attribute(cls, attribute: str) -> None:
        if attribute in cls.RESERVED:
            _refuse("auth0", attribute, "Auth0 reserves that app_metadata key")

    async def prepare(self) -> None:
        return None


class OktaTarget(OneRequestWrite):
    name = "okta"
    default_attribute = "appUserId"
    GONE = "(User)"  # E0000007 "Not found: Resource not found: <id> (User)"
    CHECKS = True
    SCOPES = "okta.users.manage okta.schemas.read"  # what an OAuth service app is asked for
    SCHEMA = "/api/v1/meta/schemas/user/default"
    NEED_WRITE = "okta.users.manage (or, for an API token, an administrator role that may edit users)"
    NEED_SCHEMA = "okta.schemas.read (or, for an API token, a read-only administrator role)"
    WRITE = ("POST", "/api/v1/users/{id}", "profile")

    def __init__(self, settings: OktaSettings, attribute: str, *, concurrency: int, retry: RetryPolicy) -> None:
        self.check_attribute(attribute)
        self.attribute = attribute
        self.core = okta.make_core(settings.model_copy(update={"scopes": self.SCOPES}), concurrency, retry)

    @classmethod
    def check_attribute(cls, attribute: str) -> None:
        if attribute in okta.PROFILE_BASE or attribute in ("id", "profile", "status", "created", "type"):
            _refuse("okta", attribute, "it is a base profile property; use a custom one")

    def _add_it(self) -> str:
        return (f"add it in the Admin Console (Directory > Profile Editor > User (default) > Add Attribute: data type"
                f" string, variable name {self.attribute}) or with POST {self.SCHEMA}, then run this again"
                " (ORGMIG_WRITEBACK_ATTRIBUTE names another attribute)")

    async def prepare(self) -> None:
        reply = await self.core.request("GET", self.SCHEMA, bucket="schema", need=self.NEED_SCHEMA)
        definitions = reply.body.get("definitions") if isinstance(reply.body, dict) else None
        custom = ((definitions or {}).get("custom") or {}).get("properties") or {}
        prop = custom.get(self.attribute)
        if not isinstance(prop, dict):
            raise ConfigError(f"okta: the user schema has no custom attribute {self.attribute!r}: {self._add_it()}")
        if prop.get("type") != "string":
            raise ConfigError(f"okta: the custom attribute {self.attribute!r} of the user schema is of type"
                              f" {prop.get('type')!r}: the app's user id is written as a string; {self._add_it()}")

    async def check(self) -> str:
        await self.prepare()
        return f"the user schema has the custom string attribute {self.attribute} ({self.SCHEMA})"


class KeycloakTarget:
    name = "keycloak"
    default_attribute = "appUserId"
    GONE = "User not found"  # (an unknown realm says "Realm not found.")
    CHECKS = True
    NEED_READ = keycloak.NEED_USERS
    NEED_WRITE = "realm-management role manage-users"
    NEED_PROFILE = "a realm-management role such as view-users or view-realm"

    def __init__(self, settings: KeycloakSettings, attribute: str, *, concurrency: int,
                 retry: RetryPolicy) -> None:
        self.check_attribute(attribute)
        self.attribute = attribute
        self.core = keycloak.make_core(settings, concurrency, retry)
        self.prefix = f"/admin/realms/{quote(settings.realm, safe='')}/users"

    @classmethod
    def check_attribute(cls, attribute: str) -> None:
        if attribute in ("username", "email", "firstName", "lastName"):
            _refuse("keycloak", attribute, "it is a root attribute of the user; use a custom one")

    async def prepare(self) -> None:
        return None

    def _declare_it(self) -> str:
        return (f"declare {self.attribute} in Realm settings > User profile (Create attribute, who can edit and"
                " view: Admin) or set Unmanaged attributes to 'Only administrators can write'"
                " (unmanagedAttributePolicy ADMIN_EDIT), then run this again")

    async def check(self) -> str:
        """The realm's user profile (Keycloak 24+): the attribute declared, or unmanaged attributes
        kept (ENABLED or ADMIN_EDIT); else every write would be dropped in silence."""
        path = f"{self.prefix}/profile"
        try:
            reply = await self.core.request("GET", path, bucket=BUCKET, need=self.NEED_PROFILE, allow_404=True)
        except IdpAuthError as exc:
            if exc.status != 403:
                raise
            return (f"not checked: the credentials may not read the user profile ({self.NEED_PROFILE}); the run"
                    " reads its first write back and stops if the attribute was dropped")
        if reply.status == 404:
            return "no declarative user profile (Keycloak before 24): attributes are kept"
        config = reply.body if isinstance(reply.body, dict) else {}
        declared = {a.get("name") for a in config.get("attributes") or [] if isinstance(a, dict)}
        if self.attribute in declared:
            return f"the realm's user profile declares {self.attribute}"
        policy = config.get("unmanagedAttributePolicy")
        if policy in ("ENABLED", "ADMIN_EDIT"):
            return f"the realm's user profile keeps unmanaged attributes (unmanagedAttributePolicy {policy})"
        raise ConfigError(
            f"keycloak: the realm's user profile does not declare {self.attribute!r} and does not let"
            f" administrators write unmanaged attributes (unmanagedAttributePolicy {policy or 'unset'}): Keycloak"
            f" 24+ would drop every write in silence; {self._declare_it()}")

    async def _get(self, path: str) -> dict:
        reply = await self.core.request("GET", path, bucket=BUCKET, need=self.NEED_READ)
        if not isinstance(reply.body, dict):
            raise IdpHttpError("GET", reply.path, reply.status, "expected a user representation")
        return reply.body

    async def write(self, external_id: str, value: str) -> str:
        path = f"{self.prefix}/{quote(external_id, safe='')}"
        user = await self._get(path)
        attributes = user.get("attributes") or {}
        if attributes.get(self.attribute) == [value]:
            return "present"
        # The whole representation back, with the one attribute merged: a PUT removes whatever
        # it omits (Keycloak 24.0.4+), root attributes and other custom attributes alike.
        await self.core.request("PUT", path, json_body={**user, "attributes": {**attributes, self.attribute: [value]}},
                                bucket=BUCKET, need=self.NEED_WRITE)
        again = await self._get(path)
        if (again.get("attributes") or {}).get(self.attribute) != [value]:
            raise AttributeDropped(
                f"keycloak: the update of user {external_id} was accepted but the user read back has no"
                f" {self.attribute!r}: the realm's user profile does not declare it, and Keycloak 24+ drops"
                f" undeclared attributes in silence; {self._declare_it()}")
        return "written"


TARGETS: dict[str, type] = {cls.name: cls for cls in (Auth0Target, OktaTarget, KeycloakTarget)}


def target_class(provider: str):
    try:
        return TARGETS[provider]
    except KeyError:
        raise ConfigError(f"unknown provider {provider!r}: choose one of {', '.join(TARGETS)}") from None


def make_target(provider: str, settings: ProviderSettings, attribute: str, *, concurrency: int,
                retry: RetryPolicy) -> Target:
    return target_class(provider)(settings, attribute, concurrency=concurrency, retry=retry)
