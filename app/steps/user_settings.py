"""Step `user_settings_to_org`: every legacy user_settings row into the org structure.

Per legacy row with a valid, winning keycloak_user_id: a personal org `user_{id}_org`, a "user",
an `admin`/`active` membership and an org settings row carrying every other column unchanged;
rows it cannot migrate (NULL, empty or blank ids; losing duplicates) are reported with a reason.
Users the application already migrated are linked and only their missing values filled; what
the application wrote is never overwritten (differences are reported, by column name only).
Filling leaves `updated_at` alone, so a downgrade restores such a row byte for byte.

One upgrade batch is one SQL statement (a chain of data-modifying CTEs) over a keyset range of
user_settings.id; one downgrade batch is one or two statements over orgmig_user_settings_link.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, text

from app.engine import ConcurrentChange
from app.schema import SETTINGS_COLUMNS
from app.steps.base import BatchResult, DowngradeRefused, KeySource, Step

log = logging.getLogger("app.steps.user_settings")

STEP_NAME = "user_settings_to_org"
DEFAULT_ROLES = (("admin", 1), ("user", 1000))
# Values a blank id may hold: no character other than white space.
VALID_ID = r"keycloak_user_id ~ '[^[:space:]]'"
# "user" columns copied from the legacy row; filled (never overwritten) on users the app created.
USER_FILL_COLUMNS = ("email", "email_verified", "accepted_tos", "enable_sound_notifications")


def _legacy_value(col: str, alias: str = "s") -> str:
    """The legacy value as the target stores it (naive UTC timestamp → timestamptz, explicitly)."""
    if col == "accepted_tos":
        return f"({alias}.accepted_tos AT TIME ZONE 'UTC')"
    return f"{alias}.{col}"


def _differs(col: str, left: str, right: str) -> str:
    """A NULL-safe inequality that also works for json (which has no equality operator)."""
    if col == "mcp_config":
        return f"{left}.{col}::text IS DISTINCT FROM {right}.{col}::text"
    return f"{left}.{col} IS DISTINCT FROM {_legacy_value(col, right) if right == 's' else right + '.' + col}"


# A time-ordered (version 7) UUID: a batch's new orgs sit side by side in every index keyed
# by org id (org, org_user, settings, the link), so inserts and foreign-key checks touch a few
# hot pages instead of one random page of a large index per row.
NEW_ORG_ID = (
    "encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing"
    " substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)"
    " FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid"
)

_SETTINGS_INSERT_COLS = ", ".join(SETTINGS_COLUMNS)
_SETTINGS_SELECT = ", ".join(_legacy_value(c) for c in SETTINGS_COLUMNS)
_SETTINGS_DIFF = ",\n                ".join(
    f"CASE WHEN {_differs(c, 'os', 's')} THEN '{c}' END" for c in SETTINGS_COLUMNS
)
# Inside `src`: x.<col> is the legacy value, x.ou_<col> the value the application's user holds.
_USER_DIFF = ",\n                ".join(
    f"CASE WHEN x.ou_{c} IS NOT NULL AND {_legacy_value(c, 'x')} IS NOT NULL"
    f" AND x.ou_{c} IS DISTINCT FROM {_legacy_value(c, 'x')} THEN '{c}' END"
    for c in USER_FILL_COLUMNS
)
_USER_FILLS = ",\n                ".join(
    [f"CASE WHEN x.ou_{c} IS NULL AND x.{c} IS NOT NULL THEN '{c}' END" for c in USER_FILL_COLUMNS]
    + [
        "CASE WHEN x.ou_legacy_user_settings_id IS NULL AND NOT EXISTS (SELECT 1 FROM \"user\" y"
        " WHERE y.legacy_user_settings_id = x.id) THEN 'legacy_user_settings_id' END",
        "CASE WHEN x.ou_current_org_id IS NULL THEN 'current_org_id' END",
    ]
)
_USER_SET = ",\n            ".join(
    [f"{c} = CASE WHEN '{c}' = ANY (s.fill_cols) THEN {_legacy_value(c)} ELSE u.{c} END" for c in USER_FILL_COLUMNS]
    + [
        "legacy_user_settings_id = CASE WHEN 'legacy_user_settings_id' = ANY (s.fill_cols) THEN s.id"
        " ELSE u.legacy_user_settings_id END",
        "current_org_id = CASE WHEN 'current_org_id' = ANY (s.fill_cols) THEN s.org_id"
        " ELSE u.current_org_id END",
    ]
)

# Joins between CTEs are estimated badly (a data-modifying CTE "returns" one row to the
# planner), so every lookup below goes to a real table through an index, and each existence
# test reads the statement's snapshot: the state before this batch wrote anything. Inserts
# carry no ON CONFLICT clause (its arbiter probes cost a tenth of the batch): a row a
# concurrent writer inserted meanwhile raises a unique violation, and the engine retries the
# batch, which then finds that row and links it. The final SELECT returns expected and actual
# counts as a second guard.
UPGRADE_BATCH = f"""
WITH rng AS MATERIALIZED (
    SELECT us.id, us.keycloak_user_id,
           us.{VALID_ID} AS id_valid,
           -- Only for valid ids: thousands of rows may share '' or a blank id. "+ 0" keeps the
           -- planner off a backward primary-key scan (O(table) per row); the keycloak_user_id
           -- index finds the few rows sharing an id.
           CASE WHEN us.{VALID_ID} THEN
               (SELECT max(w.id + 0) FROM user_settings w
                 WHERE w.keycloak_user_id = us.keycloak_user_id AND w.id <= :max_key)
           END AS winner_id
    FROM user_settings us
    WHERE us.id BETWEEN :start AND :end
),
skipped AS (
    INSERT INTO orgmig_report (step, source_table, source_id, reason, migrated, detail, run_id)
    SELECT :step, 'user_settings', r.id,
           CASE WHEN r.id_valid IS NOT TRUE THEN 'missing_keycloak_user_id'
                ELSE 'duplicate_keycloak_user_id' END,
           false,
           CASE WHEN r.keycloak_user_id IS NULL THEN jsonb_build_object('keycloak_user_id', 'NULL')
                WHEN r.keycloak_user_id = '' THEN jsonb_build_object('keycloak_user_id', 'empty')
                WHEN r.id_valid IS NOT TRUE THEN jsonb_build_object('keycloak_user_id', 'blank')
                ELSE jsonb_build_object('winner_id', r.winner_id, 'keycloak_user_id', r.keycloak_user_id) END,
           :run_id
    FROM rng r
    WHERE r.id_valid IS NOT TRUE OR r.winner_id <> r.id
    ON CONFLICT (step, source_table, source_id, reason) DO NOTHING
    RETURNING 1
),
src AS MATERIALIZED (
    -- One row per winner, with everything the inserts need: the legacy columns, the existing
    -- user and personal org (looked up through their unique indexes), the ids to use (a new
    -- time-ordered org id, a user id drawn from the identity sequence) and, for rows the
    -- application already has, what exists and what differs. Every later CTE reads only this.
    SELECT x.*,
           x.old_user_id IS NULL AS created_user,
           x.old_org_id IS NULL AS created_org,
           x.old_role_id IS NULL AS created_member,
           NOT x.settings_existed AS created_settings,
           CASE WHEN x.old_user_id IS NULL THEN '{{}}'::text[] ELSE array_remove(ARRAY[
                {_USER_FILLS}
           ]::text[], NULL) END AS fill_cols,
           CASE WHEN x.old_user_id IS NULL THEN '{{}}'::text[] ELSE array_remove(ARRAY[
                {_USER_DIFF}
           ]::text[], NULL) END AS user_diff_cols
    FROM (
        SELECT s.*, ou.id AS ou_id, ou.email AS ou_email, ou.email_verified AS ou_email_verified,
               ou.accepted_tos AS ou_accepted_tos,
               ou.enable_sound_notifications AS ou_enable_sound_notifications,
               ou.legacy_user_settings_id AS ou_legacy_user_settings_id,
               ou.current_org_id AS ou_current_org_id,
               CASE WHEN s.old_user_id IS NOT NULL AND s.old_org_id IS NOT NULL THEN
                   (SELECT m.role_id FROM org_user m WHERE m.org_id = s.org_id AND m.user_id = s.user_id)
               END AS old_role_id,
               CASE WHEN s.old_user_id IS NOT NULL AND s.old_org_id IS NOT NULL THEN
                   (SELECT m.status FROM org_user m WHERE m.org_id = s.org_id AND m.user_id = s.user_id)
               END AS old_status,
               s.old_org_id IS NOT NULL
                   AND EXISTS (SELECT 1 FROM settings x WHERE x.org_id = s.old_org_id) AS settings_existed
        FROM (
            SELECT us.*,
                   'user_' || us.id || '_org' AS org_name,
                   o.id AS old_org_id,
                   coalesce(o.id, {NEW_ORG_ID}) AS org_id,
                   u.id AS old_user_id,
                   coalesce(u.id, nextval(CAST(:user_id_sequence AS regclass))::integer) AS user_id
            FROM rng r
            JOIN user_settings us ON us.id = r.id
            LEFT JOIN org o ON o.name = 'user_' || us.id || '_org'
            LEFT JOIN "user" u ON u.keycloak_user_id = us.keycloak_user_id
            WHERE r.id_valid AND r.winner_id = r.id
              AND NOT EXISTS (SELECT 1 FROM orgmig_user_settings_link l WHERE l.user_settings_id = r.id)
            OFFSET 0
        ) s
        LEFT JOIN "user" ou ON ou.id = s.old_user_id
    ) x
),
ins_org AS (
    INSERT INTO org (id, name)
    SELECT s.org_id, s.org_name FROM src s WHERE s.created_org
    RETURNING 1
),
ins_user AS (
    INSERT INTO "user" (id, keycloak_user_id, legacy_user_settings_id, current_org_id, status,
                        email, email_verified, accepted_tos, enable_sound_notifications)
    SELECT s.user_id, s.keycloak_user_id, s.id, s.org_id, 'active', s.email, s.email_verified,
           {_legacy_value('accepted_tos')}, s.enable_sound_notifications
    FROM src s WHERE s.created_user
    RETURNING 1
),
ins_member AS (
    INSERT INTO org_user (org_id, user_id, role_id, status)
    SELECT s.org_id, s.user_id, (SELECT id FROM role WHERE name = 'admin'), 'active'
    FROM src s WHERE s.created_member
    RETURNING 1
),
ins_settings AS (
    INSERT INTO settings (org_id, {_SETTINGS_INSERT_COLS})
    SELECT s.org_id, {_SETTINGS_SELECT}
    FROM src s WHERE s.created_settings
    RETURNING 1
),
upd_user AS (
    UPDATE "user" u SET
            {_USER_SET}
    FROM src s
    WHERE u.id = s.old_user_id AND cardinality(s.fill_cols) > 0
    RETURNING 1
),
notes AS (
    INSERT INTO orgmig_report (step, source_table, source_id, reason, migrated, detail, run_id)
    SELECT :step, 'user_settings', d.sid, d.reason, true,
           jsonb_build_object('table', d.tbl, 'columns', to_jsonb(d.cols)), :run_id
    FROM (
        SELECT s.id AS sid, 'user_differs' AS reason, 'user' AS tbl, s.user_diff_cols AS cols
        FROM src s WHERE NOT s.created_user
        UNION ALL
        SELECT s.id, 'membership_differs', 'org_user',
               array_remove(ARRAY[
                CASE WHEN s.old_role_id IS DISTINCT FROM (SELECT id FROM role WHERE name = 'admin')
                     THEN 'role_id' END,
                CASE WHEN s.old_status <> 'active' THEN 'status' END
               ]::text[], NULL)
        FROM src s WHERE NOT s.created_member
        UNION ALL
        SELECT s.id, 'settings_differ', 'settings',
               array_remove(ARRAY[
                {_SETTINGS_DIFF}
               ]::text[], NULL)
        FROM src s JOIN settings os ON os.org_id = s.org_id
        WHERE NOT s.created_settings
    ) d
    WHERE cardinality(d.cols) > 0
    ON CONFLICT (step, source_table, source_id, reason)
        DO UPDATE SET detail = EXCLUDED.detail, run_id = EXCLUDED.run_id
    RETURNING 1
),
ins_link AS (
    INSERT INTO orgmig_user_settings_link (user_settings_id, user_id, org_id, created_user,
        created_org, created_org_user, created_settings, filled_user_columns, run_id)
    SELECT s.id, s.user_id, s.org_id, s.created_user, s.created_org, s.created_member,
           s.created_settings, s.fill_cols, :run_id
    FROM src s
    RETURNING 1
)
SELECT (SELECT count(*) FROM rng) AS rows_read,
       (SELECT count(*) FROM src) AS winners,
       (SELECT count(*) FROM ins_link) AS linked,
       (SELECT count(*) FROM src WHERE created_org) AS orgs_expected,
       (SELECT count(*) FROM ins_org) AS orgs_inserted,
       (SELECT count(*) FROM src WHERE created_user) AS users_expected,
       (SELECT count(*) FROM ins_user) AS users_inserted,
       (SELECT count(*) FROM src WHERE created_member) AS members_expected,
       (SELECT count(*) FROM ins_member) AS members_inserted,
       (SELECT count(*) FROM src WHERE created_settings) AS settings_expected,
       (SELECT count(*) FROM ins_settings) AS settings_inserted,
       (SELECT count(*) FROM src WHERE cardinality(fill_cols) > 0) AS fills_expected,
       (SELECT count(*) FROM upd_user) AS fills_done,
       (SELECT count(*) FROM skipped) + (SELECT count(*) FROM notes) AS reported
"""

_UNFILL = ",\n        ".join(
    f"{c} = CASE WHEN '{c}' = ANY (l.filled_user_columns) THEN NULL ELSE u.{c} END"
    for c in (*USER_FILL_COLUMNS, "legacy_user_settings_id", "current_org_id")
)

# Rows the application created that hang on rows the migration created, one predicate per kind
# (`m` an org_user row, `x` a settings row, `l` a link row). The downgrade guard counts them over
# every link; with -x allow_data_loss=true a downgrade batch deletes them over its own links.
APP_MEMBER_IN_MIGRATED_ORG = (
    "m.org_id = l.org_id AND l.created_org AND NOT (m.user_id = l.user_id AND l.created_org_user)")
APP_MEMBER_OF_MIGRATED_USER = "m.user_id = l.user_id AND l.created_user AND m.org_id <> l.org_id"
APP_SETTINGS_OF_MIGRATED_ORG = "x.org_id = l.org_id AND l.created_org AND NOT l.created_settings"
APP_SETTINGS_OF_MIGRATED_USER = "x.user_id = l.user_id AND l.created_user"


def _current_org_is_migrated(links: str) -> str:
    """Users (`u`) the migration did not create whose current org it created (and did not set)."""
    return (f"u.current_org_id IN (SELECT org_id FROM {links} WHERE created_org)"
            f" AND u.id NOT IN (SELECT user_id FROM {links} WHERE created_user)"
            f" AND NOT EXISTS (SELECT 1 FROM {links} f WHERE f.user_id = u.id"
            f" AND 'current_org_id' = ANY (f.filled_user_columns))")


DOWNGRADE_DATA_LOSS_BATCH = f"""
WITH l AS MATERIALIZED (
    SELECT * FROM orgmig_user_settings_link WHERE user_settings_id BETWEEN :start AND :end
),
app_settings AS (
    DELETE FROM settings x USING l
    WHERE ({APP_SETTINGS_OF_MIGRATED_ORG}) OR ({APP_SETTINGS_OF_MIGRATED_USER})
    RETURNING 1
),
app_members AS (
    DELETE FROM org_user m USING l
    WHERE ({APP_MEMBER_IN_MIGRATED_ORG}) OR ({APP_MEMBER_OF_MIGRATED_USER})
    RETURNING 1
),
app_current_org AS (
    UPDATE "user" u SET current_org_id = NULL, updated_at = now()
    WHERE {_current_org_is_migrated("l")}
    RETURNING 1
)
SELECT (SELECT count(*) FROM app_settings) + (SELECT count(*) FROM app_members)
     + (SELECT count(*) FROM app_current_org)
"""

DOWNGRADE_BATCH = f"""
WITH l AS MATERIALIZED (
    SELECT * FROM orgmig_user_settings_link WHERE user_settings_id BETWEEN :start AND :end
),
del_settings AS (
    DELETE FROM settings x USING l WHERE l.created_settings AND x.org_id = l.org_id RETURNING 1
),
del_members AS (
    DELETE FROM org_user m USING l
    WHERE l.created_org_user AND m.org_id = l.org_id AND m.user_id = l.user_id
    RETURNING 1
),
unfill AS (
    UPDATE "user" u SET
        {_UNFILL}
    FROM l
    WHERE u.id = l.user_id AND NOT l.created_user AND cardinality(l.filled_user_columns) > 0
    RETURNING 1
),
del_users AS (
    DELETE FROM "user" u USING l WHERE l.created_user AND u.id = l.user_id RETURNING 1
),
del_orgs AS (
    DELETE FROM org o USING l WHERE l.created_org AND o.id = l.org_id RETURNING 1
),
del_link AS (
    DELETE FROM orgmig_user_settings_link x USING l
    WHERE x.user_settings_id = l.user_settings_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM l) AS rows_read,
       (SELECT count(*) FROM del_settings) + (SELECT count(*) FROM del_members)
     + (SELECT count(*) FROM unfill) + (SELECT count(*) FROM del_users)
     + (SELECT count(*) FROM del_orgs) AS written
"""

# The guard: how many of each kind exist, over every link.
_LINKS = "orgmig_user_settings_link"
DEPENDENT_APP_ROWS = f"""
SELECT
  (SELECT count(*) FROM org_user m JOIN {_LINKS} l ON {APP_MEMBER_IN_MIGRATED_ORG})
    AS "org_user rows in migrated personal orgs",
  (SELECT count(*) FROM org_user m JOIN {_LINKS} l ON {APP_MEMBER_OF_MIGRATED_USER})
    AS "org_user rows of migrated users in other orgs",
  (SELECT count(*) FROM settings x JOIN {_LINKS} l ON {APP_SETTINGS_OF_MIGRATED_ORG})
    AS "settings rows of migrated personal orgs",
  (SELECT count(*) FROM settings x JOIN {_LINKS} l ON {APP_SETTINGS_OF_MIGRATED_USER})
    AS "settings rows of migrated users",
  (SELECT count(*) FROM "user" u WHERE {_current_org_is_migrated(_LINKS)})
    AS "users whose current org is a migrated personal org"
"""

# Foreign keys from other tables (the application's own) into org or "user".
FOREIGN_REFERENCES = """
SELECT c.conrelid::regclass::text AS tbl, a.attname AS col, c.confrelid::regclass::text AS target
FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
WHERE c.contype = 'f' AND cardinality(c.conkey) = 1
  AND c.confrelid IN ('org'::regclass, '"user"'::regclass)
  AND c.conrelid NOT IN ('org_user'::regclass, 'settings'::regclass, '"user"'::regclass,
                         'orgmig_user_settings_link'::regclass)
"""


class UserSettingsToOrg(Step):
    name = STEP_NAME
    upgrade_keys = KeySource("user_settings", "id")
    downgrade_keys = KeySource("orgmig_user_settings_link", "user_settings_id")

    def prepare(self, conn: Connection, direction: str, run_id: int) -> None:
        # The identity sequence behind "user".id: new users' ids are drawn from it in the batch.
        self._user_id_sequence = conn.execute(
            text("""SELECT pg_get_serial_sequence('"user"', 'id')""")).scalar()
        if direction != "upgrade":
            return
        conn.execute(
            text(
                "WITH ins AS (INSERT INTO role (name, rank) VALUES "
                + ", ".join(f"('{n}', {r})" for n, r in DEFAULT_ROLES)
                + " ON CONFLICT (name) DO NOTHING RETURNING name)"
                " INSERT INTO orgmig_created_row (step, table_name, row_key)"
                " SELECT :step, 'role', name FROM ins ON CONFLICT DO NOTHING"
            ),
            {"step": self.name},
        )
        for name, rank in DEFAULT_ROLES:
            found = conn.execute(text("SELECT rank FROM role WHERE name = :n"), {"n": name}).scalar()
            if found != rank:
                log.warning("role %r exists with rank %s (expected %s); left as it is", name, found, rank)

    def check_downgrade(self, conn: Connection, allow_data_loss: bool) -> None:
        counts = dict(conn.execute(text(DEPENDENT_APP_ROWS)).mappings().one())
        for tbl, col, target in conn.execute(text(FOREIGN_REFERENCES)).all():
            created = "created_org" if target == "org" else "created_user"
            key = "org_id" if target == "org" else "user_id"
            n = conn.execute(
                text(f"SELECT count(*) FROM {tbl} t WHERE t.{col} IN"
                     f" (SELECT {key} FROM orgmig_user_settings_link WHERE {created})")
            ).scalar()
            counts[f"{tbl} rows referencing migrated {target} rows"] = n
            if n and allow_data_loss:
                raise DowngradeRefused(
                    f"{n} rows of {tbl} reference {target} rows created by this migration; they"
                    f" belong to the application and orgmig does not delete them: remove or"
                    f" re-point them ({tbl}.{col}) first. Nothing was deleted."
                )
        found = {k: v for k, v in counts.items() if v}
        if found and not allow_data_loss:
            listing = ", ".join(f"{v:,} {k}" for k, v in found.items())
            raise DowngradeRefused(
                f"refusing to downgrade {self.name}: the application created rows that depend on"
                f" rows this migration created ({listing}). Nothing was deleted. To delete those"
                f" rows too, run the downgrade again with -x allow_data_loss=true"
            )

    def process(self, conn: Connection, direction: str, start: int, end: int, run_id: int,
                max_key: int, allow_data_loss: bool) -> BatchResult:
        params = {"start": start, "end": end, "run_id": run_id, "max_key": max_key, "step": self.name,
                  "user_id_sequence": self._user_id_sequence}
        # Every read in these statements is a keyed lookup. The target tables grow from empty
        # during the run, and statistics taken while they were empty (or none at all) would let
        # the planner scan them whole once per batch: take the index paths whatever the stats say.
        for setting in ("enable_seqscan", "enable_hashjoin", "enable_mergejoin"):
            conn.exec_driver_sql(f"SET LOCAL {setting} = off")
        if direction == "upgrade":
            r = conn.execute(text(UPGRADE_BATCH), params).mappings().one()
            short = [kind for kind in ("orgs", "users", "members", "settings")
                     if r[f"{kind}_expected"] != r[f"{kind}_inserted"]]
            if short or r["linked"] != r["winners"] or r["fills_expected"] != r["fills_done"]:
                # A concurrent writer (the app migrating a user at login) wrote a row between
                # this statement's snapshot and its insert; the batch is rolled back and retried.
                raise ConcurrentChange(
                    f"rows in {start}..{end} changed while the batch ran"
                    f" ({', '.join(short) or 'links'} differ from what the batch expected)"
                )
            written = sum(r[f"{k}_inserted"] for k in ("orgs", "users", "members", "settings"))
            return BatchResult(r["rows_read"], written + r["fills_done"] + r["linked"] + r["reported"])
        extra = 0
        if allow_data_loss:
            extra = conn.execute(text(DOWNGRADE_DATA_LOSS_BATCH), params).scalar()
        r = conn.execute(text(DOWNGRADE_BATCH), params).mappings().one()
        return BatchResult(r["rows_read"], r["written"] + extra)

    def finish(self, conn: Connection, direction: str, run_id: int) -> None:
        # Fresh statistics for the tables this run filled or emptied, so the application's first
        # queries are planned for what is there now.
        conn.exec_driver_sql('ANALYZE role, org, "user", org_user, settings, orgmig_user_settings_link')
        if direction != "downgrade":
            return
        conn.execute(text("DELETE FROM orgmig_report WHERE step = :s"), {"s": self.name})
        conn.execute(
            text("WITH gone AS (DELETE FROM role r USING orgmig_created_row c"
                 " WHERE c.step = :s AND c.table_name = 'role' AND c.row_key = r.name"
                 " AND NOT EXISTS (SELECT 1 FROM org_user m WHERE m.role_id = r.id) RETURNING r.name)"
                 " DELETE FROM orgmig_created_row c USING gone"
                 " WHERE c.step = :s AND c.table_name = 'role' AND c.row_key = gone.name"),
            {"s": self.name},
        )

    def summary(self, conn: Connection, direction: str, run_id: int) -> dict:
        links = conn.execute(
            text("SELECT count(*) AS linked_total,"
                 " count(*) FILTER (WHERE run_id = :r) AS linked_this_run,"
                 " count(*) FILTER (WHERE created_user) AS users_created,"
                 " count(*) FILTER (WHERE NOT created_user) AS users_found"
                 " FROM orgmig_user_settings_link"), {"r": run_id},
        ).mappings().one()
        reports = conn.execute(
            text("SELECT reason, count(*) FROM orgmig_report WHERE step = :s GROUP BY reason ORDER BY reason"),
            {"s": self.name},
        ).all()
        legacy = conn.execute(text("SELECT count(*) FROM user_settings")).scalar()
        return {"legacy_rows": legacy, **dict(links), "reported": {r: n for r, n in reports}}


STEP = UserSettingsToOrg()
