"""Step `identity:<provider>` (revision 0007, and `orgmig sync`): the latest finished export of an
identity provider applied to the org schema: links between IdP accounts and app users, roles per
org, facility access, status, names and emails, site admins. The contract is DESIGN.md's
"Identity data contract".

The SQL is in this folder:
- plan.sql, before a new run: the export to apply, what each group means, the roles, orgs and
  facilities the snapshot needs, the reports on groups;
- compare.sql: every account's desired state compared with the tables in one set-based
  statement: the plan's counts (the mass-change guard reads them) and the desired state of the
  accounts the run has work for (orgmig_identity_plan, whose accounts are the keys its batches
  walk), and `orgmig reconcile`'s drift;
- state.sql: the desired state of a batch's accounts and how the tables differ from it, in
  temporary tables that its writes read (and `match`, which the login endpoint runs for one
  account);
- apply.sql: one batch's writes, each recorded in orgmig_identity_undo;
- rules.sql: every rule of the contract written once (matching, group meaning, role words and
  ranks, memberships, status, compared columns, app edits, the owner of a user's values),
  expanded by name into the statements above (RuleFiles); what differs between providers comes
  in as their capabilities (app.provider_names.CAPABILITIES), never as a branch on a name;
- finish.sql and downgrade.sql.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Connection, text

from app import db
from app.batch import (
    ALL_KEYS,
    Batch,
    BatchResult,
    DowngradeRefused,
    KeySource,
    MigrationError,
    SqlFiles,
    Step,
    StepFamily,
    runs,
)
from app.config import Settings
from app.errors import ConfigError
from app.numbers import plural
from app.provider_names import CAPABILITIES, PROVIDERS
from app.schema.idp_snapshot import ACCOUNT_TABLES
from app.steps.roles import RANKS, ensure_roles, remove_roles

log = logging.getLogger("app.steps.identity")



class RuleFiles(SqlFiles):
    """The step's statements, with the contract's rules of rules.sql expanded where they are named:
    `{rule}`, or `{rule:alias}` for a rule about one row (written in rules.sql for `{row}`). A rule
    may name another; each is written once."""

    RULE = re.compile(r"\{([a-z_]+)(?::(\w+))?\}")

    def source(self, name: str, **expansions: str) -> str:
        return self.expand(super().source(name, **expansions))

    def expand(self, sql: str) -> str:
        """`sql` with the rules it names expanded."""
        return self.RULE.sub(self._rule, sql)

    def _rule(self, m: re.Match) -> str:
        rule, alias = m.groups()
        if f"rules.{rule}" not in self._statements:
            return m.group(0)
        sql = self.source(f"rules.{rule}")
        return sql.replace("{row}", alias) if alias else sql


SQL = RuleFiles(Path(__file__).parent)
APP_ROLE_WORDS = ("ADMIN", "USER", "ENTRY_ONLY", "ALL_FACILITIES", "NO_ACCESS")
STATE = ("load_users", "load_desired", "match")
DIFFS = ("diff_members", "diff_facilities", "diff_users")
ROLES = ("admin", "user", "entry_only")  # what the IdP's memberships map to
# compare.sql's CTEs, with the group meanings read from the snapshot (reconcile, which writes
# nothing) or from those the plan just recorded (a sync's plan)
CHAIN_FROM_SNAPSHOT = SQL.source("compare.chain", groups=SQL.source("compare.groups_from_snapshot"))
CHAIN_OF_PLAN = SQL.source("compare.chain", groups=SQL.source("compare.groups_of_plan"))
# the accounts with work (compare.work) and what the plan keeps of each for the run's batches
# (compare.keep)
WORK = SQL.source("compare.work")
KEEP = SQL.source("compare.keep")
# A first load (plan.first_load) claims this many times ORGMIG_BATCH_SIZE a batch: its batches run
# some fifteen statements whatever their size (planned afresh each time), and each row costs little.
FIRST_LOAD_SCALE = 4
# The comparison hashes every account's memberships and access rows: in memory, not in batches
# written to disk (4 MB, the default, spills at a few tens of thousands of accounts).
COMPARE_WORK_MEM = "64MB"
# The undo log's index on user_id, which only the downgrade reads (it walks the log by user):
# revision 0009 dropped it, and the downgrade builds it where it is missing. The work list of
# revision 0006, which revision 0009 dropped (runs walk their plan's accounts).
USER_ID_INDEX = "ix_orgmig_identity_undo_user_id"
OLD_WORK_LIST = "orgmig_identity_todo"


def parse_role_map(raw: str) -> dict[str, str]:
    """ORGMIG_ROLE_MAP (`idp_role=app_role,...`) as {lower(idp role): ROLE WORD}; app roles are
    admin, user, entry_only, all_facilities and no_access, in any case."""
    mapping: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        idp_role, sep, app_role = item.partition("=")
        word = app_role.strip().upper()
        if not sep or not idp_role.strip() or word not in APP_ROLE_WORDS:
            raise ConfigError(
                f"ORGMIG_ROLE_MAP: {item!r} is not idp_role=app_role with app_role one of"
                f" {', '.join(w.lower() for w in APP_ROLE_WORDS)}")
        mapping[idp_role.strip().lower()] = word
    return mapping


@dataclass(frozen=True)
class Export:
    """The export a run applies."""

    id: int
    started_at: datetime


class IdentitySync(Step):
    """Applies one provider's snapshot. One instance per provider; `settings` carries the group
    environment, the role map and the mass-change guard."""

    # Keyed lookups into the tables a run fills (their statistics are those of before the run).
    # Sequential scans stay allowed: a batch reads its accounts from temporary tables, which only a
    # sequential scan reads, and with enable_seqscan off every plan carries the same disable cost,
    # which PostgreSQL (before 18) compares within 1%: all plans tie and the join order is chance.
    batch_settings = {"enable_hashjoin": "off", "enable_mergejoin": "off"}
    analyze_after = ('"user"', "org_user", "org_user_facility", "user_identity")
    new_keys_only = False  # every run plans its accounts afresh

    def __init__(self, provider: str, settings: Settings) -> None:
        self.provider = provider
        self.name = IDENTITY.name(provider)
        self.settings = settings
        self.role_map = json.dumps(parse_role_map(settings.role_map))
        self.priority = [p.strip() for p in settings.provider_priority.split(",") if p.strip()]
        self._environment_checked: int | None = None  # the export whose environment was checked

    def keys(self, direction: str) -> KeySource:
        if direction == "upgrade":
            return KeySource("orgmig_identity_plan", "row_id", "provider = :provider", {"provider": self.provider})
        return KeySource("orgmig_identity_undo", "user_id", "provider = :provider AND user_id IS NOT NULL",
                         {"provider": self.provider})

    # -- what every statement needs ----------------------------------------------------------

    def _params(self, **more) -> dict:
        return {"provider": self.provider, "step": self.name, "env": self.settings.idp_env,
                "role_map": self.role_map, "role_words": list(APP_ROLE_WORDS), "role_names": list(ROLES),
                "role_ranks": [RANKS[n] for n in ROLES], "priority": self.priority, "run_id": None,
                **CAPABILITIES[self.provider].params(), **more}

    def export(self, conn: Connection) -> Export | None:
        """The latest finished export; None when there is none. An export started after it and
        not finished has written into the snapshot already: refuse rather than apply a mix."""
        row = conn.execute(SQL("plan.exports"), self._params()).mappings().one()
        if row["unfinished_id"] is not None:
            what = ("its pages are already in the snapshot tables" if row["unfinished_wrote"] else
                    "it is still running (or its process was stopped) and may write pages into the snapshot"
                    " tables at any moment")
            raise MigrationError(
                f"{self.name}: export run {row['unfinished_id']} of {self.provider} is not finished, and"
                f" {what}; finish it (orgmig export --provider {self.provider}) before applying the snapshot")
        if row["finished_id"] is None:
            return None
        if row["finished_id"] != self._environment_checked:
            # once per finished export: the plan, the run and its finish each ask for the export,
            # and the groups of a finished export do not change (an export writing after it is
            # refused above)
            self.check_environment(conn)
            self._environment_checked = row["finished_id"]
        return Export(row["finished_id"], row["started_at"])

    def check_environment(self, conn: Connection) -> None:
        """An export whose SimpleReport groups all belong to other environments than
        ORGMIG_IDP_ENV's is a setting pointing at another installation: applied, it would take
        every role and site-admin flag away. A configuration error, naming what the export has."""
        found = conn.execute(SQL("plan.environments"), self._params()).all()
        env = self.settings.idp_env
        if found and env not in {e for e, _ in found}:
            listing = ", ".join(f"{e} ({n:,} groups)" for e, n in found)
            raise ConfigError(
                f"{self.name}: ORGMIG_IDP_ENV={env}, but the export of {self.provider} has no group"
                f" SR-{env}-...; its SimpleReport groups are of the environments {listing}. Set"
                " ORGMIG_IDP_ENV to this installation's environment; nothing was written")

    def load_state(self, conn: Connection, export: Export, batch: Batch) -> None:
        """The temporary tables of state.sql for the planned accounts of the batch's range, from
        the desired state the plan kept (filled again first when the server lost it)."""
        if conn.execute(SQL("plan.kept_for"), self._params()).scalar() != batch.run_id:
            self.keep_for_run(conn, export, batch.run_id)
        conn.exec_driver_sql(SQL.source("state.temp_tables"))
        params = self._params(start=batch.start, end=batch.end, run_id=batch.run_id,
                              export_started=export.started_at)
        for name in STATE:
            conn.execute(SQL(f"state.{name}"), params)

    def keep_for_run(self, conn: Connection, export: Export, run_id: int) -> None:
        """The plan's tables (plan.plan_tables) hold the desired state of this run's accounts,
        whose keys its batches walk: claimed by the run that follows the plan; planned again
        (compare.refill: the accounts with work now, by the same comparison) when they hold
        nothing of the provider (UNLOGGED: a server restart empties them) or another run's. One
        process at a time (the others wait, then find it done)."""
        conn.exec_driver_sql(SQL.source("plan.plan_tables"))
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('orgmig:identity-plan:' || :p, 0))"),
                     {"p": self.provider})
        params = self._params(run_id=run_id, export_started=export.started_at)
        owner = conn.execute(SQL("plan.kept_for"), params).first()
        if owner is not None and owner.run_id in (None, run_id):
            if owner.run_id is None:
                conn.execute(SQL("plan.keep_for"), params)
            return
        timeout = conn.exec_driver_sql("SHOW statement_timeout").scalar_one()
        conn.execute(text("SELECT set_config('work_mem', :v, true), set_config('statement_timeout', '0', true)"),
                     {"v": COMPARE_WORK_MEM})
        conn.execute(SQL("plan.forget_kept"), params)
        kept = conn.execute(SQL("compare.refill", chain=CHAIN_OF_PLAN, work=WORK, keep=KEEP), params).mappings().one()
        conn.execute(SQL("plan.keep_for"), params)
        conn.execute(text("SELECT set_config('statement_timeout', :v, true)"), {"v": timeout})
        log.info("%s: the plan's desired state of run %s was gone (a server restart empties it): computed"
                 " again for %s", self.name, run_id, plural(kept["accounts"], "account"))

    def diff(self, conn: Connection, export: Export) -> None:
        params = self._params(export_started=export.started_at)
        for name in DIFFS:
            conn.execute(SQL(f"state.{name}"), params)

    # -- planning ------------------------------------------------------------------------------

    def plan_groups(self, conn: Connection) -> None:
        """The snapshot's tables analyzed if they have no statistics or changed since
        (app.db.analyze_stale), a clean slate, then what each group means, the group reports,
        and the roles, orgs and facilities the snapshot needs."""
        params = self._params()
        # An export analyzes them as it finishes; this covers a snapshot an older orgmig exported
        # and statistics lost since (a restore, a crash: PostgreSQL forgets n_mod_since_analyze).
        db.analyze_stale(conn, ACCOUNT_TABLES)
        conn.execute(SQL("plan.forget"), params)
        forget_old_work_list(conn, self.provider)
        for name in ("classify", "facility_conflicts", "report_groups"):
            conn.execute(SQL(f"plan.{name}"), params)
        conn.exec_driver_sql(SQL.source("plan.analyze_groups"))
        ensure_roles(conn, self.name, ROLES)
        conn.execute(SQL("plan.create_orgs"), params)
        conn.execute(SQL("plan.create_facilities"), params)
        conn.exec_driver_sql(SQL.source("plan.analyze_orgs"))

    def compare_plan(self, conn: Connection, export: Export, *, reports: bool = False) -> dict:
        """The group meanings, orgs and facilities (plan_groups), then one set-based statement
        (compare.plan) that compares every account's desired state with the tables, records the
        desired state of the accounts with work in the plan's tables (the keys the run walks) and
        returns the guard's counts; with `reports`
        (a dry run) also what the batches would report, by reason (`reported`)."""
        self.plan_groups(conn)
        conn.exec_driver_sql(SQL.source("plan.plan_tables"))
        params = self._params(export_started=export.started_at, reports=reports)
        conn.execute(SQL("plan.forget_kept"), params)
        conn.execute(text("SELECT set_config('work_mem', :v, true)"), {"v": COMPARE_WORK_MEM})
        counts = dict(conn.execute(SQL("compare.plan", chain=CHAIN_OF_PLAN, work=WORK, keep=KEEP),
                                   params).mappings().one())
        conn.execute(SQL("plan.keep_for"), params)  # for the run about to open (run_id NULL)
        return counts

    def plan(self, conn: Connection, direction: str) -> None:
        """The run's plan (compare_plan), refused by the mass-change guard when it would disable
        or take memberships from too many linked users."""
        if direction != "upgrade":
            return
        conn.exec_driver_sql(SQL.source("plan.plan_tables"))  # the keys the run walks (keys())
        export = self.export(conn)
        if export is None:
            log.info("%s: no finished export of %s: nothing to apply (run `orgmig export --provider %s`"
                     " first)", self.name, self.provider, self.provider)
            return
        counts = self.compare_plan(conn, export)
        self.guard(counts)  # a refusal rolls the plan back, the plan's tables with it
        log.info("%s: %s", self.name, describe_plan(counts))

    def guard(self, counts: dict[str, int]) -> None:
        """Refuse a sync that would disable users or take memberships away from more than the
        allowed fraction of the linked users (a truncated export must never wipe the user
        base), unless allow_mass_change."""
        linked, changed = counts["linked"], counts["mass_changed"]
        limit = self.settings.max_removed_fraction
        if too_many_changed(counts, limit) and not self.settings.allow_mass_change:
            raise MigrationError(
                f"{self.name}: refusing to apply the export: it would disable {counts['disabled']:,} linked"
                f" users, remove memberships of {counts['losing_memberships']:,} and site-admin rights of"
                f" {counts['losing_site_admin']:,}, together"
                f" {changed:,} of {linked:,} linked users ({changed / linked:.0%}, more than"
                f" ORGMIG_MAX_REMOVED_FRACTION={limit:g}). Nothing was written. If the export is"
                " complete and this is intended, run again with -x allow_mass_change=true"
                " (orgmig sync --allow-mass-change)")

    # -- the run -------------------------------------------------------------------------------

    def prepare(self, conn: Connection, direction: str, run_id: int) -> dict:
        sequence = conn.exec_driver_sql("""SELECT pg_get_serial_sequence('"user"', 'id')""").scalar_one()
        if direction == "downgrade":
            # the downgrade walks the undo log by user: the index it reads, built where revision
            # 0009 dropped it (once, before the first batch; dropped again by finish)
            conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {USER_ID_INDEX} ON orgmig_identity_undo (user_id)")
        export = self.export(conn) if direction == "upgrade" else None
        first_load = False
        if export is not None:
            self.keep_for_run(conn, export, run_id)
            first_load = conn.execute(SQL("plan.first_load"), self._params(run_id=run_id)).scalar_one()
        return {"export": export, "sequence": sequence, "first_load": first_load}

    def keys_ready(self, conn: Connection, direction: str, run_id: int, state: dict | None) -> None:
        """The keys the run walks are its plan's accounts (UNLOGGED): after a server restart
        emptied them, planned again before the claim reads them (keep_for_run)."""
        export = state.get("export") if state else None
        if direction == "upgrade" and export is not None \
                and conn.execute(SQL("plan.kept_for"), self._params()).scalar() != run_id:
            self.keep_for_run(conn, export, run_id)

    def batch_rows(self, state: dict | None, configured: int) -> int:
        """A first load's batches are FIRST_LOAD_SCALE times the configured size."""
        return configured * FIRST_LOAD_SCALE if state and state.get("first_load") else configured

    def upgrade(self, conn: Connection, batch: Batch) -> BatchResult:
        export: Export = batch.state["export"]
        self.load_state(conn, export, batch)
        params = self._params(run_id=batch.run_id, user_id_sequence=batch.state["sequence"],
                              export_started=export.started_at)
        conn.execute(SQL("apply.create_users"), params)
        conn.execute(SQL("state.lock_rows"), params)  # then decide: an edit committed meanwhile is seen
        self.diff(conn, export)
        written = conn.execute(SQL("apply.link"), params).rowcount
        members = conn.execute(SQL("apply.apply_members"), params).mappings().one()
        access = conn.execute(SQL("apply.apply_facilities"), params).mappings().one()
        removed = conn.execute(SQL("apply.remove_members"), params).rowcount
        users = conn.execute(SQL("apply.apply_users"), params).scalar_one()
        conn.execute(SQL("apply.report"), params)
        rows = conn.exec_driver_sql("SELECT count(*) FROM batch_account").scalar_one()
        return BatchResult(rows, written + sum(members.values()) + sum(access.values()) + removed + users)

    def refuse_downgrade(self, conn: Connection, allow_data_loss: bool) -> dict[str, int]:
        """Refuse a downgrade that would delete what the application did: rows it built on rows
        this step created, and rows this step created that it changed since; unless
        allow_data_loss. Returns how many rows this step changed the application changed since
        (the downgrade keeps those as they are). Revision 0007 calls it before any revision's
        downgrade changes anything, the run again before its batches."""
        params = self._params(**ALL_KEYS, delete=False)
        counts = dict(conn.execute(SQL("downgrade.dependent_rows"), params).mappings().one())
        counts.update(conn.execute(SQL("downgrade.org_dependents"), params).mappings().one())
        counts.update(conn.execute(SQL("downgrade.app_changed"), params).mappings().one())
        counts.pop("written")
        kept = {k: counts.pop(k) for k in ("kept_users", "kept_members")}
        DowngradeRefused.unless_allowed(self.name, counts, allow_data_loss, "the application created or changed"
                                        " rows that the downgrade would delete", nothing="changed")
        return kept

    def check_downgrade(self, conn: Connection, allow_data_loss: bool) -> None:
        kept = self.refuse_downgrade(conn, allow_data_loss)
        if any(kept.values()):
            log.info("%s: %s users and %s memberships the application changed after a sync wrote them"
                     " are kept as the application changed them (not put back)", self.name,
                     f"{kept['kept_users']:,}", f"{kept['kept_members']:,}")

    def downgrade(self, conn: Connection, batch: Batch) -> BatchResult:
        params = self._params(start=batch.start, end=batch.end, delete=batch.allow_data_loss)
        extra = 0
        if batch.allow_data_loss:
            extra = conn.execute(SQL("downgrade.dependent_rows"), params).mappings().one()["written"]
        r = conn.execute(SQL("downgrade.undo_batch"), params).mappings().one()
        after = conn.execute(SQL("downgrade.undo_batch_after"), params).scalar_one()
        access = conn.execute(SQL("downgrade.undo_access_after"), params).scalar_one()
        return BatchResult(r["rows_read"], r["written"] + after + access + extra)

    def finish(self, conn: Connection, direction: str, run_id: int) -> None:
        params = self._params(run_id=run_id, **ALL_KEYS, delete=self.settings.allow_data_loss)
        if direction == "upgrade":
            if self.export(conn) is not None:
                conn.execute(SQL("finish.report_app_users"), params)
            forget_old_work_list(conn, self.provider)
            if conn.exec_driver_sql("SELECT to_regclass('orgmig_identity_plan') IS NOT NULL").scalar_one():
                conn.execute(SQL("plan.forget_kept"), params)
            return
        if self.settings.allow_data_loss:
            conn.execute(SQL("downgrade.org_dependents"), params)
        conn.execute(SQL("downgrade.drop_created"), params)
        if not forget_old_work_list(conn, self.provider):
            # at revision 0009 (no work list of revision 0006): the index prepare built goes
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {USER_ID_INDEX}")
        remove_roles(conn, self.name)

    def summary(self, conn: Connection, direction: str, run_id: int) -> dict[str, int]:
        if direction != "upgrade":
            return {}
        r = conn.execute(SQL("finish.summary"), self._params(run_id=run_id)).mappings().one()
        return {"IdP accounts": r["accounts"], "linked": r["linked"], "links created": r["links_created"],
                "users created": r["users_created"], "users changed": r["users_changed"],
                "memberships written": r["memberships_written"]}


# One step per provider, identity:<provider> (revision 0007 runs one for each provider with an export)
IDENTITY = StepFamily("identity", IdentitySync)


def too_many_changed(counts: dict[str, int], fraction: float) -> bool:
    """The mass-change guard's rule: more of the linked users disabled, losing memberships or
    losing site-admin rights than ORGMIG_MAX_REMOVED_FRACTION allows. Compared in decimal, as the
    setting is written (29 of 100 is exactly 0.29, where 0.29 * 100 in binary floating point is
    28.999999999999996)."""
    linked, changed = counts["linked"], counts["mass_changed"]
    return bool(changed and linked and changed > Decimal(str(fraction)) * linked)


def describe_plan(counts: dict[str, int]) -> str:
    """The plan's counts as a person reads them."""
    return (f"{plural(counts['accounts'], 'account')}: {plural(counts['links_created'], 'link')} to create,"
            f" {plural(counts['users_created'], 'user')} to create; memberships {counts['memberships_added']:,} to"
            f" add, {counts['memberships_changed']:,} to change, {counts['memberships_removed']:,} to remove;"
            f" facility access {counts['facilities_added']:,} to grant, {counts['facilities_removed']:,} to"
            f" remove; {plural(counts['users_changed'], 'user')} to change"
            f" ({plural(counts['status_changes'], 'status', 'statuses')})")


def forget_old_work_list(conn: Connection, provider: str) -> bool:
    """Below revision 0009 (revision 0006's work list still there): the accounts an older orgmig
    planned into it, forgotten where this one forgets its plan. Whether the list is there."""
    if not conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": OLD_WORK_LIST}).scalar_one():
        return False
    conn.execute(text(f"DELETE FROM {OLD_WORK_LIST} WHERE provider = :provider"), {"provider": provider})
    return True


def drop_plan_tables(conn: Connection) -> None:
    """Revision 0007's downgrade, once every provider's syncs are undone: the tables a sync's plan
    keeps its desired state in (plan.plan_tables), which the step created."""
    conn.exec_driver_sql(SQL.source("plan.drop_plan_tables"))


def providers_with_export(conn: Connection) -> list[str]:
    """Providers with a finished export, in registry order."""
    found = set(conn.exec_driver_sql(
        "SELECT DISTINCT provider FROM idp_export_run WHERE status = 'finished'").scalars())
    return [p for p in PROVIDERS if p in found]


def schema_rows_sql() -> str:
    """The query revision 0006's downgrade refuses on: (tbl, n) of what its tables will hold of the
    application's once every provider's runs are undone (downgrade.schema_rows)."""
    return SQL.source("downgrade.schema_rows").strip().rstrip(";")


def providers_applied(conn: Connection) -> list[str]:
    """Providers whose snapshot this step applied (it has something to undo), in the order to
    undo them: the reverse of the order they are applied in (a later provider's rows may hang
    on users an earlier one created)."""
    found = set(conn.exec_driver_sql("SELECT DISTINCT provider FROM orgmig_identity_undo").scalars())
    found |= {IDENTITY.member(step) for step in runs.step_names(conn, IDENTITY.name(""))}
    return [p for p in reversed(PROVIDERS) if p in found]
