"""A sync that its settings would make destructive is refused before it writes: an
ORGMIG_IDP_ENV that names no environment of the export, an export that takes site-admin rights
from many users, and the mass-change fraction compared exactly."""

from __future__ import annotations

import pytest
from sqlalchemy.pool import NullPool

from app.batch import MigrationError
from app.config import with_overrides
from app.db import make_engine
from app.steps.identity import IdentitySync
from tests.support.db import scalar
from tests.support.identity import cli, export, fingerprint, group_name, rows
from tests.support.migrate import run_alembic


def test_an_environment_the_export_does_not_have_is_a_configuration_error(identity_databases):
    url, engine = identity_databases.open("okta", "synced")
    before = fingerprint(engine)
    for args in (("sync",), ("sync", "--dry-run"), ("reconcile",)):
        out = cli(url, *args, "--provider", "okta", ORGMIG_IDP_ENV="STAGING")
        assert out.code == 2, out.stderr[-3000:]
        line = out.stderr.strip().splitlines()[-1]
        assert "ORGMIG_IDP_ENV=STAGING" in line and "PROD (" in line and "DEV (" in line, line
    assert fingerprint(engine) == before
    # The revision refuses the same way, before it writes anything.
    fresh = identity_databases.get("okta", "exported")
    up = run_alembic(fresh, "upgrade", "head", ORGMIG_IDP_ENV="STAGING")
    assert up.returncode == 2, up.stderr[-3000:]
    assert "ORGMIG_IDP_ENV=STAGING" in up.stderr
    fresh_engine = make_engine(fresh, poolclass=NullPool)
    assert scalar(fresh_engine, "SELECT count(*) FROM user_identity") == 0
    fresh_engine.dispose()
    engine.dispose()


def test_site_admin_removals_count_towards_the_mass_change_guard(identity_databases, identity_fake):
    url, engine = identity_databases.open("okta", "synced")
    fake = identity_fake("okta")
    admins = fake.tenant.group_by_name(group_name("ADMINS")).id
    members = fake.tenant.members(admins)
    for user in members:
        fake.tenant.remove_member(admins, user)
    export(url, "okta", fake)
    linked = scalar(engine, "SELECT count(*) FROM user_identity WHERE provider = 'okta'")
    before = fingerprint(engine)
    fraction = "0.01"
    assert len(members) > 0.01 * linked

    refused = cli(url, "sync", "--provider", "okta", ORGMIG_MAX_REMOVED_FRACTION=fraction)
    assert refused.code == 1, refused.stderr[-3000:]
    assert (f"remove memberships of 0 and site-admin rights of {len(members)}, together {len(members)} of"
            f" {linked} linked users") in refused.stderr
    assert fingerprint(engine) == before
    dry = cli(url, "sync", "--provider", "okta", "--dry-run", ORGMIG_MAX_REMOVED_FRACTION=fraction)
    assert f"the sync would be refused: {len(members)} of {linked} linked users" in dry.stdout

    allowed = cli(url, "sync", "--provider", "okta", "--allow-mass-change", ORGMIG_MAX_REMOVED_FRACTION=fraction)
    assert allowed.code == 0, allowed.stderr[-3000:]
    assert rows(engine, 'SELECT count(*) FROM "user" WHERE is_site_admin') == [(0,)]
    engine.dispose()


@pytest.mark.parametrize(("changed", "refused"), [(29, False), (30, True)])
def test_the_fraction_is_compared_exactly(changed, refused):
    step = IdentitySync("okta", with_overrides({"max_removed_fraction": "0.29"}))
    counts = {"linked": 100, "mass_changed": changed, "disabled": changed, "losing_memberships": 0,
              "losing_site_admin": 0}
    if refused:
        with pytest.raises(MigrationError, match="30 of 100 linked users"):
            step.guard(counts)
    else:
        step.guard(counts)  # 29 of 100 is 0.29: allowed
