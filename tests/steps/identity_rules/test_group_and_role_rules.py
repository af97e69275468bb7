"""rules.sql's group, role and status rules, each on a few rows: what a group name means (a group
of another environment means nothing), a facility named under two orgs, the highest role on a
rank tie, NO_ACCESS and unknown roles, and each provider's status words."""

from __future__ import annotations

import pytest

FAC_1 = "f1000000-0000-4000-8000-000000000001"
FAC_2 = "f2000000-0000-4000-8000-000000000002"


def add_groups(rules, provider: str, *names: str, kind: str = "group") -> None:
    for i, name in enumerate(names):
        rules.exec("INSERT INTO idp_group (provider, kind, external_id, name, raw, first_seen_run_id,"
                   " last_seen_run_id) VALUES (:p, :k, :x, :n, '{}', 1, 1)", p=provider, k=kind, x=f"g{i}", n=name)


def test_a_group_name_means_a_role_a_facility_site_admin_a_report_or_nothing(rules):
    names = ["SR-PROD-TENANT:org-1:ADMIN", "SR-PROD-TENANT:org-1:FACILITY_ACCESS:" + FAC_1, "SR-PROD-ADMINS",
             "SR-DEV-TENANT:org-1:USER", "SR-DEV-ADMINS", "SR-PROD-TENANT:org-1:SUPERUSER",
             "SR-PROD-TENANT:org-1:FACILITY_ACCESS:not-a-uuid", "SR-PROD-TENANT:", "Everyone"]
    add_groups(rules, "okta", *names)
    found = {r.external_id: (r.meaning, r.org_external_id, r.role_name, r.facility_id and str(r.facility_id))
             for r in rules.rule("{group_meaning}")}
    assert [found[f"g{i}"] for i in range(len(names))] == [
        ("role", "org-1", "ADMIN", None),
        ("facility", "org-1", None, FAC_1),
        ("site_admin", None, None, None),
        ("ignored", None, None, None),  # another environment's groups mean nothing
        ("ignored", None, None, None),
        ("unknown_role", "org-1", "SUPERUSER", None),
        ("invalid_facility_id", "org-1", None, None),
        ("malformed_group_name", None, None, None),
        ("ignored", None, None, None),
    ]


def test_a_facility_named_under_two_orgs_belongs_to_neither(rules):
    rules.exec("INSERT INTO org (id, name, external_id) VALUES ('00000000-0000-4000-8000-00000000000b', 'B', 'org-b')")
    rules.exec(f"INSERT INTO facility (id, org_id) VALUES ('{FAC_2}', '00000000-0000-4000-8000-00000000000b')")
    fac = f"""fac(facility_id, org_external_id) AS (VALUES (CAST('{FAC_1}' AS uuid), 'org-a'),
                                                          (CAST('{FAC_1}' AS uuid), 'org-b'),
                                                          (CAST('{FAC_2}' AS uuid), 'org-a'),
                                                          (CAST('{FAC_2}' AS uuid), 'org-b'))"""
    got = rules.rule(f"""WITH {fac}, c(facility_id, org_external_id) AS (VALUES
                             (CAST('{FAC_1}' AS uuid), 'org-a'), (CAST('{FAC_2}' AS uuid), 'org-a'),
                             (CAST('{FAC_2}' AS uuid), 'org-b'))
                         SELECT c.facility_id::text, c.org_external_id, {{facility_in_two_orgs:c}}
                         FROM c ORDER BY 1, 2""")
    # FAC_1: two orgs in the snapshot; FAC_2 under org-a: the app has it in org B
    assert [tuple(r) for r in got] == [(FAC_1, "org-a", True), (FAC_2, "org-a", True), (FAC_2, "org-b", True)]
    alone = rules.rule(f"""WITH fac(facility_id, org_external_id) AS (VALUES (CAST('{FAC_2}' AS uuid), 'org-b')),
                              c(facility_id, org_external_id) AS (VALUES (CAST('{FAC_2}' AS uuid), 'org-b'))
                          SELECT {{facility_in_two_orgs:c}} FROM c""")
    assert alone[0][0] is False  # named under its own org once: it is that org's


MEMBERSHIP = """
WITH roles(id, name, rank) AS (VALUES {roles}),
words(external_id, org, word) AS (VALUES {words})
SELECT w.external_id, {membership}
FROM words w LEFT JOIN roles r ON {role_of_word}
GROUP BY w.external_id, w.org ORDER BY 1"""


def membership(rules, roles: str, words: str) -> dict:
    sql = MEMBERSHIP.replace("{roles}", roles).replace("{words}", words)
    return {r.external_id: (r.role_id, r.all_facilities, r.problem) for r in rules.rule(sql)}


def test_the_highest_role_wins_and_on_a_rank_tie_the_lowest_role_id(rules):
    got = membership(rules, "(7, 'admin', 1), (4, 'user', 1), (9, 'entry_only', 2000)",
                     "('tie', 'o', 'ADMIN'), ('tie', 'o', 'USER'), ('rank', 'o', 'ENTRY_ONLY'), ('rank', 'o', 'ADMIN'),"
                     " ('all', 'o', 'ALL_FACILITIES'), ('all', 'o', 'ENTRY_ONLY')")
    assert got == {"tie": (4, True, None),  # admin and user both rank 1: role id 4, the lower
                   "rank": (7, True, None),  # admin (rank 1) over entry_only (2000)
                   "all": (9, True, None)}  # ALL_FACILITIES is no role, but covers every facility


def test_no_access_alone_is_no_membership_and_an_unknown_role_is_reported(rules):
    got = membership(rules, "(1, 'admin', 1), (2, 'user', 1000)",
                     "('none', 'o', 'NO_ACCESS'), ('member', 'o', 'MEMBER'), ('member_none', 'o', 'MEMBER'),"
                     " ('member_none', 'o', 'NO_ACCESS'), ('odd', 'o', 'UNKNOWN:superuser'), ('odd', 'o', 'USER'),"
                     " ('fac', 'o', 'FACILITY')")
    assert got == {"none": (None, False, None),  # NO_ACCESS: neither stored nor reported
                   "member": (None, False, "no_role_in_org"),
                   "member_none": (None, False, None),
                   "odd": (2, False, "unknown_role"),
                   "fac": (None, False, "no_role_in_org")}  # facility access without a role


STATUSES = {
    "okta": {"ACTIVE": "active", "RECOVERY": "active", "PASSWORD_EXPIRED": "active", "LOCKED_OUT": "active",
             "STAGED": "pending", "PROVISIONED": "invited", "SUSPENDED": "disabled", "DEPROVISIONED": "disabled",
             "enabled": None},
    "keycloak": {"enabled": "active", "disabled": "disabled", "ACTIVE": None},
    "auth0": {"active": "active", "blocked": "disabled", "SUSPENDED": None},
}


@pytest.mark.parametrize("provider", sorted(STATUSES))
def test_each_providers_status_words_map_to_the_apps_statuses(rules, provider):
    for i, status in enumerate(STATUSES[provider]):
        rules.exec("INSERT INTO idp_user (provider, external_id, email, status, raw, first_seen_run_id,"
                   " last_seen_run_id) VALUES (:p, :x, ' Ann@Example.org ', :s, '{}', 1, 1)",
                   p=provider, x=f"u{i}", s=status)
    got = {r.status: (r.app_status, r.email, r.email_norm) for r in rules.rule(
        "SELECT u.status, {account_values} FROM idp_user u WHERE u.provider = :provider", provider)}
    assert {s: v[0] for s, v in got.items()} == STATUSES[provider]  # another provider's words mean nothing
    assert {v[1:] for v in got.values()} == {("Ann@Example.org", "ann@example.org")}
