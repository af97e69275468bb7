"""`orgmig sync --dry-run --json`: the numbers the dry run prints, as one JSON object of a
documented shape (docs/runbook.md), and what the sync then does: the links it creates and the
rows it reports, by reason."""

from __future__ import annotations

import json
import re

from tests.support.db import scalar
from tests.support.identity import alembic, cli, fingerprint, rows

PLAN_LINE = re.compile(
    r"(?P<accounts>\d+) accounts: (?P<links_created>\d+) links to create, (?P<users_created>\d+) users to create;"
    r" memberships (?P<memberships_added>\d+) to add, (?P<memberships_changed>\d+) to change,"
    r" (?P<memberships_removed>\d+) to remove; facility access (?P<facilities_added>\d+) to grant,"
    r" (?P<facilities_removed>\d+) to remove; (?P<users_changed>\d+) users to change"
    r" \((?P<status_changes>\d+) statuses\)")


def test_the_dry_run_as_json_says_what_it_prints_and_what_the_sync_then_does(identity_databases):
    provider = "okta"
    url, engine = identity_databases.open(provider, "exported")
    before = fingerprint(engine)

    printed = cli(url, "sync", "--provider", provider, "--dry-run")
    as_json = cli(url, "sync", "--provider", provider, "--dry-run", "--json")

    assert (printed.code, as_json.code) == (0, 0), as_json.stderr[-3000:]
    assert fingerprint(engine) == before  # nothing written
    data = json.loads(as_json.stdout)
    assert set(data) == {"provider", "step", "export_run", "changes", "reported", "mass_change"}
    assert (data["provider"], data["step"]) == ("okta", "identity:okta")
    assert data["export_run"] == scalar(engine, "SELECT max(id) FROM idp_export_run WHERE provider = 'okta'"
                                                " AND status = 'finished'")
    # the same numbers as the text, count for count and reason for reason
    lines = printed.stdout.splitlines()
    assert lines[0] == f"identity:okta: dry run of export run {data['export_run']}, nothing written"
    counts = PLAN_LINE.fullmatch(lines[1].strip())
    assert counts, lines[1]
    assert data["changes"] == {k: int(v) for k, v in counts.groupdict().items()}
    assert data["changes"]["links_created"] > 0 and data["changes"]["users_created"] > 0
    assert lines[2] == "  reported: " + ", ".join(f"{n:,} {reason}" for reason, n in data["reported"].items())
    assert data["reported"] and all(isinstance(n, int) and n > 0 for n in data["reported"].values())
    assert data["mass_change"] == {"linked": 0, "disabled": 0, "losing_memberships": 0, "losing_site_admin": 0,
                                   "changed": 0,
                                   "max_removed_fraction": 0.2, "over_limit": False, "allow_mass_change": False,
                                   "refused": False}
    assert "would be refused" not in printed.stdout

    # the sync does what the dry run said: its links, and its reports by reason
    applied = alembic(url, "upgrade", "head")
    assert applied.returncode == 0, applied.stderr[-3000:]
    assert scalar(engine, "SELECT count(*) FROM user_identity WHERE provider = 'okta'") == \
        data["changes"]["links_created"] + data["changes"]["users_created"]
    assert dict(rows(engine, "SELECT reason, count(*) FROM orgmig_report WHERE step = 'identity:okta'"
                             " GROUP BY reason")) == data["reported"]
    engine.dispose()


def test_json_without_dry_run_is_refused_in_one_line(identity_databases):
    url = identity_databases.get("okta", "exported")
    out = cli(url, "sync", "--provider", "okta", "--json")
    assert out.code == 2 and out.stdout == ""
    assert out.stderr.strip() == "orgmig: --json goes with --dry-run: `orgmig sync --provider P --dry-run --json`"
