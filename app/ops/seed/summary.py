"""What one seed wrote, counted from the table afterwards (never from what the generator meant to
write), and the summary as a person reads it: counts per kind, never a value."""

from __future__ import annotations

from dataclasses import dataclass, fields

from sqlalchemy import Connection, text

from app.ops.seed.generate import AWKWARD_FLOATS, DST_TIMESTAMPS, HUGE_JSON_MIN_BYTES
from app.schema import SECRET_COLUMNS, SETTINGS_COLUMNS, user_settings

# In table order, so the counting statement is the same text on every run.
_SECRETS = tuple(c.name for c in user_settings.columns if c.name in SECRET_COLUMNS)
# The settings columns that may hold NULL (the generator leaves all of them NULL on some rows).
_NULLABLE = tuple(c.name for c in user_settings.columns if c.nullable and c.name in SETTINGS_COLUMNS)
_UNICODE_COLUMNS = ("git_user_name", "email", "git_user_email", "language", "agent")

_BLANK_CHARS = "E' \\t\\n\\r\\f\\v'"


def _awkward(column: str) -> str:
    """The column holds one of AWKWARD_FLOATS (-0 compares equal to 0, so its text decides)."""
    values = ", ".join(f"'{v}'::float8" for v in AWKWARD_FLOATS if v != "-0")
    return f"({column} IN ({values}) OR ({column} = 0 AND {column}::text = '-0'))"


def _count_sql() -> str:
    dst = "ARRAY[" + ", ".join(f"'{t}'::timestamp" for t in DST_TIMESTAMPS) + "]"
    plain = " + ".join(f"count(*) FILTER (WHERE {c} LIKE 'sk-%')" for c in _SECRETS)
    fernet = " + ".join(f"count(*) FILTER (WHERE {c} LIKE 'gAAAAA%')" for c in _SECRETS)
    unicode = " OR ".join(f"octet_length({c}) <> char_length({c})" for c in _UNICODE_COLUMNS)
    return f"""
WITH dup AS MATERIALIZED (
    SELECT keycloak_user_id, count(*) AS n FROM user_settings
    WHERE id BETWEEN :first_id AND :last_id AND btrim(keycloak_user_id, {_BLANK_CHARS}) <> ''
    GROUP BY keycloak_user_id HAVING count(*) > 1
)
SELECT count(*) AS users,
       count(*) FILTER (WHERE keycloak_user_id IS NULL) AS null_keycloak_id,
       count(*) FILTER (WHERE keycloak_user_id = '') AS empty_keycloak_id,
       count(*) FILTER (WHERE keycloak_user_id <> '' AND btrim(keycloak_user_id, {_BLANK_CHARS}) = '')
           AS blank_keycloak_id,
       (SELECT coalesce(sum(n), 0) FROM dup) AS duplicate_rows,
       (SELECT count(*) FROM dup) AS duplicate_groups,
       (SELECT count(*) FROM dup WHERE n >= 3) AS duplicate_groups_3plus,
       count(*) FILTER (WHERE {unicode}) AS unicode_rows,
       count(*) FILTER (WHERE octet_length(mcp_config::text) >= {HUGE_JSON_MIN_BYTES}) AS huge_mcp_config,
       count(*) FILTER (WHERE left(mcp_config::text, 1) = '{{'
                        AND octet_length(mcp_config::text) < {HUGE_JSON_MIN_BYTES}) AS json_object_mcp_config,
       count(*) FILTER (WHERE strpos(mcp_config::text, '"nested"') > 0) AS nested_unicode_mcp_config,
       count(*) FILTER (WHERE mcp_config::text = 'null') AS json_null_mcp_config,
       count(*) FILTER (WHERE mcp_config IS NULL) AS sql_null_mcp_config,
       {plain} AS plaintext_secrets,
       {fernet} AS ciphertext_secrets,
       count(*) FILTER (WHERE num_nonnulls({", ".join(_NULLABLE)}) = 0) AS all_nullable_null,
       count(*) FILTER (WHERE accepted_tos IS NULL) AS null_accepted_tos,
       count(*) FILTER (WHERE accepted_tos = ANY({dst})) AS dst_accepted_tos,
       count(*) FILTER (WHERE {_awkward("billing_margin")} OR {_awkward("max_budget_per_task")})
           AS awkward_float_rows
FROM user_settings
WHERE id BETWEEN :first_id AND :last_id
"""


@dataclass(frozen=True)
class SeedSummary:
    """What one `seed_legacy` call wrote, counted from the table afterwards. Never holds values."""

    users: int
    seed: int
    first_id: int
    last_id: int
    seconds: float
    null_keycloak_id: int
    empty_keycloak_id: int
    blank_keycloak_id: int
    duplicate_rows: int  # rows sharing their keycloak_user_id with another row of this seed
    duplicate_groups: int  # distinct keycloak_user_ids shared by two or more rows
    duplicate_groups_3plus: int
    unicode_rows: int
    huge_mcp_config: int
    json_object_mcp_config: int  # ordinary JSON objects (not huge)
    nested_unicode_mcp_config: int  # of those, nested objects with unicode and JSON nulls inside
    json_null_mcp_config: int
    sql_null_mcp_config: int
    plaintext_secrets: int  # secret values (four columns) holding plaintext `sk-…`
    ciphertext_secrets: int  # secret values holding Fernet-shaped ciphertext
    all_nullable_null: int
    null_accepted_tos: int
    dst_accepted_tos: int
    awkward_float_rows: int

    @property
    def duplicate_losers(self) -> int:
        """Rows that share an id with a row of higher id (each group has one winner)."""
        return self.duplicate_rows - self.duplicate_groups

    @property
    def unmigratable(self) -> int:
        """Rows the data contract reports instead of migrating."""
        return self.null_keycloak_id + self.empty_keycloak_id + self.blank_keycloak_id + self.duplicate_losers

    @property
    def migratable(self) -> int:
        return self.users - self.unmigratable

    @property
    def rate(self) -> float:
        return self.users / self.seconds if self.seconds > 0 else float("inf")

    def kinds(self) -> list[tuple[str, int]]:
        """(label, count) for every kind, in a stable order a person can read."""
        return [
            ("NULL keycloak_user_id", self.null_keycloak_id),
            ("empty keycloak_user_id", self.empty_keycloak_id),
            ("blank keycloak_user_id (spaces, tabs, newlines)", self.blank_keycloak_id),
            ("rows sharing a keycloak_user_id", self.duplicate_rows),
            ("  shared ids (highest id wins)", self.duplicate_groups),
            ("  shared by 3 or more rows", self.duplicate_groups_3plus),
            ("  losing duplicates", self.duplicate_losers),
            ("unicode names, emails, language, agent", self.unicode_rows),
            ("huge mcp_config (>= 100 KB)", self.huge_mcp_config),
            ("JSON object mcp_config", self.json_object_mcp_config),
            ("  nested, with unicode and nulls", self.nested_unicode_mcp_config),
            ("JSON null mcp_config", self.json_null_mcp_config),
            ("SQL NULL mcp_config", self.sql_null_mcp_config),
            ("plaintext secret values (sk-...) *", self.plaintext_secrets),
            ("ciphertext secret values (gAAAAA...) *", self.ciphertext_secrets),
            ("every nullable column NULL", self.all_nullable_null),
            ("NULL accepted_tos", self.null_accepted_tos),
            ("accepted_tos at a DST change", self.dst_accepted_tos),
            ("awkward floats (0.1, 1e-300, max, -0, NaN)", self.awkward_float_rows),
            ("migratable (valid id, highest id wins)", self.migratable),
            ("to be reported (no valid id or a losing duplicate)", self.unmigratable),
        ]


_RUN_FIELDS = ("users", "seed", "first_id", "last_id", "seconds")
_COUNT_FIELDS = tuple(f.name for f in fields(SeedSummary) if f.name not in _RUN_FIELDS)


def count_kinds(conn: Connection, first_id: int, last_id: int) -> dict[str, int]:
    """Rows per kind among ids first_id..last_id (`users` included), as the table holds them."""
    counts = conn.execute(text(_count_sql()), {"first_id": first_id, "last_id": last_id}).mappings().one()
    return {name: int(counts[name]) for name in ("users", *_COUNT_FIELDS)}


def render(summary: SeedSummary) -> str:
    """The summary as a person reads it: counts per kind, never a value."""
    width = max(len(label) for label, _ in summary.kinds())
    lines = [
        (
            f"Seeded {summary.users:,} legacy users into user_settings "
            f"(ids {summary.first_id}-{summary.last_id}, seed {summary.seed}) "
            f"in {summary.seconds:.2f} s ({summary.rate:,.0f} users/s)"
        ),
        "",
        f"  {'kind':<{width}}  {'rows':>10}",
    ]
    lines += [f"  {label:<{width}}  {count:>10,}" for label, count in summary.kinds()]
    lines.append(f"  * values, not rows: each row has {len(_SECRETS)} secret columns ({', '.join(_SECRETS)}),"
                 " each NULL or one value")
    return "\n".join(lines)
