"""Writing the app's user ids back into the identity provider (`orgmig writeback`).

For every `user_identity` link of a provider, the account gets the app's id (`"user".id` in
decimal) under one attribute, and nothing else on it changes (app.writeback.targets says how, per
provider). The attribute is ORGMIG_WRITEBACK_ATTRIBUTE, or when that is unset `app_user_id` (a key
of Auth0's `app_metadata`) and `appUserId` (an Okta custom profile property, a Keycloak user
attribute).

- Idempotent: an account the latest export saw holding the value (`idp_user.attributes`), or that
  an earlier write-back set with no export seeing it since, is not written again.
- Resumable: each result is committed as it comes (`orgmig_writeback`, revision 0008), so a run
  after a crash or a partial failure writes only what is left; failures are reported per account
  in orgmig_report (step `writeback:<provider>`, reason `writeback_failed`: the HTTP status and the
  provider's one-line message).
- An account deleted at the provider (a 404 saying the user does not exist) is no failure: it is
  reported once (reason `writeback_account_gone`) and later runs skip it, until an export sees the
  account again (or the link goes).
- No request while a database transaction is open: the links are read and the transaction closed,
  then the requests go out, and their results are recorded in short transactions of their own.
- `dry_run`: counts what would be written, writes nothing; when there is something to write it
  reads where the value lands (Okta's user schema, Keycloak's user profile; Auth0 needs nothing)
  and raises the ConfigError the real run would stop with at once.

The public API: `writeback(provider, engine, dry_run=False)` -> `Result`, `attribute_for`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from sqlalchemy import Engine

from app.config import Settings, get_settings
from app.idp.config import ProviderSettings, checked
from app.idp.errors import guarded_logs, register_secret
from app.idp.http import RetryPolicy
from app.idp.providers import load_settings
from app.writeback.run import WriteLoop, dry_check
from app.writeback.store import Store
from app.writeback.targets import Target, make_target, target_class

__all__ = ["Result", "attribute_for", "writeback"]


def attribute_for(provider: str, settings: Settings | None = None) -> str:
    """The attribute that carries the app's id on `provider`'s accounts: ORGMIG_WRITEBACK_ATTRIBUTE,
    else the provider's default; a ConfigError when the provider cannot hold it under that name."""
    cls = target_class(provider)
    name = (settings or get_settings()).writeback_attribute or cls.default_attribute
    cls.check_attribute(name)
    return name


def where(provider: str, attribute: str) -> str:
    """Where the value lands, as a person would look for it."""
    return {"auth0": f"app_metadata.{attribute}", "okta": f"profile.{attribute}"}.get(provider,
                                                                                      f"attributes.{attribute}")


@dataclass
class Result:
    provider: str
    attribute: str
    dry_run: bool
    links: int
    by_snapshot: int  # the latest export saw the value on the account
    by_record: int  # an earlier write-back set it
    gone_before: int  # an earlier write-back found the account deleted at the provider: skipped
    to_write: int
    written: int = 0
    present: int = 0  # the live account held it already (Keycloak reads before writing)
    failed: int = 0
    gone: int = 0  # this run found the account deleted at the provider
    failures: list[str] = field(default_factory=list)
    halted: str | None = None  # why it stopped taking accounts before the end (the rest: not tried)
    requests: int = 0
    seconds: float = 0.0
    check: str | None = None  # what the dry run's read found where the value lands (None: nothing read)

    @property
    def target(self) -> str:
        return where(self.provider, self.attribute)

    @property
    def not_tried(self) -> int:
        return 0 if self.dry_run else self.to_write - self.written - self.present - self.failed - self.gone


def writeback(provider: str, engine: Engine, *, dry_run: bool = False, settings: Settings | None = None,
              provider_settings: ProviderSettings | None = None, concurrency: int | None = None) -> Result:
    """Set the app's id on every linked account of `provider` that does not hold it yet.

    Raises ConfigError (exit 2: a setting, the provider's credentials or its schema/user profile),
    DatabaseError (exit 2: the tables are missing, the database refused), or IdpError (exit 1)
    when the provider fails the check made before the first write (Okta's schema). A failed
    account raises nothing: it is counted in the result (`failed`) and reported."""
    tuning = settings or get_settings()
    attribute = attribute_for(provider, tuning)
    store = Store(engine, provider, attribute)
    store.check_tables()
    started = time.monotonic()

    def target(workers: int) -> Target:
        creds = checked(provider, provider_settings) if provider_settings is not None else load_settings(provider)
        for secret in creds.secrets():
            register_secret(secret)
        # Two slots more than the workers: the HTTP core keeps two for other buckets (the token).
        return make_target(provider, creds, attribute, concurrency=workers + 2,
                           retry=RetryPolicy.from_settings(tuning))

    if dry_run:
        plan = store.plan()
        result = Result(provider, attribute, True, plan.links, len(plan.by_snapshot), plan.by_record, plan.gone,
                        len(plan.todo))
        if plan.todo and target_class(provider).CHECKS:
            reader = target(1)
            with guarded_logs():
                result.check = asyncio.run(dry_check(reader))
            result.requests = reader.core.stats.requests
        result.seconds = time.monotonic() - started
        return result
    workers = concurrency or tuning.writeback_concurrency
    with store.lock():
        plan = store.plan()
        store.confirm(plan.by_snapshot)
        result = Result(provider, attribute, False, plan.links, len(plan.by_snapshot), plan.by_record, plan.gone,
                        len(plan.todo))
        if plan.todo:
            writer = target(workers)
            runner = WriteLoop(writer, store, plan.todo, workers)
            try:
                with guarded_logs():
                    asyncio.run(runner.run())
            finally:
                tally = runner.tally
                result.written, result.present, result.failed, result.gone = (tally.written, tally.present,
                                                                               tally.failed, tally.gone)
                result.failures, result.requests = tally.failures, writer.core.stats.requests
                result.halted = tally.halted
        store.tidy()
    result.seconds = time.monotonic() - started
    return result
