"""Synthetic legacy data (app.ops.seed and `orgmig seed-legacy`) against a real PostgreSQL."""

from __future__ import annotations

import base64
import json
import math
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from app.db import DatabaseError, make_engine
from app.ops import migrations
from app.ops.seed import DST_TIMESTAMPS, MISSING_TABLE, seed_legacy, summary
from app.ops.seed.generate import insert_sql
from app.schema import SECRET_COLUMNS, user_settings
from tests.support.db import execute, scalar, table_md5

USERS = 2_000
NULLABLE = [c.name for c in user_settings.columns if c.nullable and c.name not in ("id", "keycloak_user_id")]
UUID_RE = "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
DST_ZONES = (ZoneInfo("America/New_York"), ZoneInfo("Europe/Berlin"))


@pytest.fixture
def legacy_engine(engine, alembic_cfg):
    """An empty database at revision 0001: user_settings exists and holds no rows."""
    migrations.upgrade(alembic_cfg, "0001")
    return engine


@pytest.fixture(scope="module")
def seeded(pg_server):
    """One database at 0001 seeded with USERS rows, shared by the tests that only read it."""
    url = pg_server.create("orgmig_seeded")
    eng = make_engine(url, poolclass=NullPool)
    try:
        migrations.upgrade(migrations.alembic_config(url), "0001")
        yield eng, seed_legacy(eng, USERS, seed=0)
    finally:
        eng.dispose()
        pg_server.drop(url)


def rows(engine, sql: str, **params) -> list:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))


def count(engine, where: str) -> int:
    return scalar(engine, f"SELECT count(*) FROM user_settings WHERE {where}")


def _local_time_is_odd(ts: datetime) -> bool:
    """The naive time does not exist or exists twice as wall-clock time in a DST zone."""
    return any(ts.replace(tzinfo=z, fold=0).utcoffset() != ts.replace(tzinfo=z, fold=1).utcoffset() for z in DST_ZONES)


def _is_fernet_token(value: str) -> bool:
    try:
        raw = base64.urlsafe_b64decode(value)
    except ValueError:
        return False
    issued = int.from_bytes(raw[1:9], "big")
    return (
        value.startswith("gAAAAA")
        and len(raw) == 121
        and raw[0] == 0x80
        and datetime(2018, 12, 31).timestamp() < issued < datetime(2027, 1, 1).timestamp()
        and base64.urlsafe_b64encode(raw).decode() == value
    )


# --- determinism ------------------------------------------------------------------------------


def test_same_users_and_seed_give_byte_identical_rows(pg_server):
    checksums = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        url = pg_server.create(f"orgmig_seed_{name}")
        eng = make_engine(url, poolclass=NullPool)
        try:
            migrations.upgrade(migrations.alembic_config(url), "0001")
            summary = seed_legacy(eng, 1_500, seed=seed)
            counts = {k: v for k, v in vars(summary).items() if k != "seconds"}
            checksums[name] = (table_md5(eng, "user_settings"), counts)
        finally:
            eng.dispose()
            pg_server.drop(url)
    assert checksums["a"] == checksums["b"]
    assert checksums["a"][0][0] == 1_500
    assert checksums["a"][0] != checksums["c"][0]


# --- every awkward kind, counted from the table -----------------------------------------------


def test_identity_kinds_are_present_and_counted(seeded):
    engine, s = seeded
    assert s.users == USERS == count(engine, "true")
    assert (s.first_id, s.last_id) == (1, USERS)
    assert s.null_keycloak_id == count(engine, "keycloak_user_id IS NULL") > 0
    assert s.empty_keycloak_id == count(engine, "keycloak_user_id = ''") > 0
    assert s.blank_keycloak_id == count(engine, "keycloak_user_id ~ '^[ \\t\\n]+$'") > 0
    blanks = {r[0] for r in rows(engine, "SELECT DISTINCT keycloak_user_id FROM user_settings"
                                         " WHERE keycloak_user_id ~ '^[ \\t\\n]+$'")}
    assert any("\t" in b for b in blanks) and any("\n" in b for b in blanks) and " " in blanks
    valid = USERS - s.null_keycloak_id - s.empty_keycloak_id - s.blank_keycloak_id
    assert count(engine, f"keycloak_user_id ~ '{UUID_RE}'") == valid
    groups = rows(
        engine,
        "SELECT keycloak_user_id, count(*) FROM user_settings WHERE keycloak_user_id ~ :re"
        " GROUP BY 1 HAVING count(*) > 1",
        re=UUID_RE,
    )
    assert s.duplicate_groups == len(groups) > 0
    assert s.duplicate_rows == sum(n for _, n in groups)
    assert s.duplicate_groups_3plus == sum(1 for _, n in groups if n >= 3) > 0
    assert {n for _, n in groups} == {2, 3, 4}
    assert s.migratable == valid - (s.duplicate_rows - s.duplicate_groups)
    assert s.migratable + s.unmigratable == USERS


def test_duplicates_have_one_winner_with_the_highest_id(seeded):
    engine, s = seeded
    members = rows(
        engine,
        """
        SELECT keycloak_user_id, array_agg(id ORDER BY id) FROM user_settings
        WHERE keycloak_user_id IN (SELECT keycloak_user_id FROM user_settings
                                   WHERE keycloak_user_id ~ :re GROUP BY 1 HAVING count(*) > 1)
        GROUP BY 1
        """,
        re=UUID_RE,
    )
    winners = rows(
        engine,
        """
        SELECT DISTINCT ON (keycloak_user_id) keycloak_user_id, id FROM user_settings
        WHERE keycloak_user_id ~ :re ORDER BY keycloak_user_id, id DESC
        """,
        re=UUID_RE,
    )
    winner_of = dict(winners)
    assert len(members) == s.duplicate_groups
    for kc, ids in members:
        assert len(set(ids)) == len(ids) >= 2
        assert winner_of[kc] == max(ids)
    # The shared ids are byte-identical (no case or whitespace variants pretending to match).
    assert count(engine, "keycloak_user_id <> btrim(keycloak_user_id) AND keycloak_user_id ~ '[^ \\t\\n]'") == 0
    assert len(winners) == s.migratable


def test_unicode_rows_cover_accents_cjk_emoji_and_rtl(seeded):
    engine, s = seeded
    data = rows(engine, "SELECT git_user_name, email, git_user_email, language, agent FROM user_settings")
    unicode_rows = [r for r in data if any(v is not None and not v.isascii() for v in r)]
    assert s.unicode_rows == len(unicode_rows) > 0
    joined = "".join(v for r in unicode_rows for v in r if v)
    assert any(ch in joined for ch in "éüåöß")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in joined)
    assert any(ord(ch) >= 0x1F300 for ch in joined)
    assert any("\u0590" <= ch <= "\u06ff" for ch in joined)
    for column in ("git_user_name", "email", "git_user_email", "language", "agent"):
        assert count(engine, f"octet_length({column}) > char_length({column})") > 0, column


def test_mcp_config_shapes_huge_nested_null_and_sql_null(seeded):
    engine, s = seeded
    assert s.huge_mcp_config == count(engine, "octet_length(mcp_config::text) > 150000") > 0
    sizes = [r[0] for r in rows(engine, "SELECT octet_length(mcp_config::text) FROM user_settings"
                                        " WHERE octet_length(mcp_config::text) > 150000")]
    assert all(180_000 <= n <= 240_000 for n in sizes)
    assert s.json_object_mcp_config == count(
        engine, "json_typeof(mcp_config) = 'object' AND octet_length(mcp_config::text) <= 150000") > 0
    assert s.json_null_mcp_config == count(engine, "json_typeof(mcp_config) = 'null'") > 0
    assert s.sql_null_mcp_config == count(engine, "mcp_config IS NULL") > 0
    assert s.nested_unicode_mcp_config == count(
        engine, "json_extract_path(mcp_config, 'meta', 'nested', 'depth') IS NOT NULL") > 0
    nested = json.loads(rows(engine, "SELECT mcp_config::text FROM user_settings"
                                     " WHERE mcp_config::text LIKE '%\"nested\"%' LIMIT 1")[0][0])
    env = nested["stdio_servers"][0]["env"]
    assert env["EMPTY"] is None and not env["GREETING"].isascii() and not env["RTL"].isascii()
    huge = json.loads(rows(engine, "SELECT mcp_config::text FROM user_settings"
                                   " WHERE octet_length(mcp_config::text) > 150000 LIMIT 1")[0][0])
    assert len(huge["stdio_servers"]) > 500
    # Spellings that only the json type keeps: whitespace and number formats survive as written.
    assert count(engine, "mcp_config::text LIKE '%2.50%1e3%-0.0%'") > 0
    assert count(engine, "mcp_config::text <> (mcp_config::jsonb)::text AND json_typeof(mcp_config) = 'object'") > 0


def test_secrets_are_plaintext_on_old_rows_and_fernet_tokens_otherwise(seeded):
    engine, s = seeded
    values = rows(engine, f"SELECT id, {', '.join(sorted(SECRET_COLUMNS))} FROM user_settings ORDER BY id")
    plaintext = [(r[0], v) for r in values for v in r[1:] if v is not None and v.startswith("sk-")]
    ciphertext = [v for r in values for v in r[1:] if v is not None and not v.startswith("sk-")]
    assert s.plaintext_secrets == len(plaintext) > 0
    assert s.ciphertext_secrets == len(ciphertext) > 0
    # Plaintext only on the oldest rows; every other secret is a well-formed Fernet token.
    assert max(i for i, _ in plaintext) <= USERS // 50
    assert sum(1 for v in ciphertext if _is_fernet_token(v)) == len(ciphertext)
    assert len(set(ciphertext)) == len(ciphertext)
    for column in sorted(SECRET_COLUMNS):
        assert count(engine, f"{column} LIKE 'gAAAAA%'") > 0, column
        assert count(engine, f"{column} IS NULL") > 0, column


def test_nulls_in_every_nullable_column(seeded):
    engine, s = seeded
    assert s.all_nullable_null == count(engine, f"num_nonnulls({', '.join(NULLABLE)}) = 0") > 0
    for column in NULLABLE:
        others = count(engine, f"{column} IS NULL AND num_nonnulls({', '.join(NULLABLE)}) > 0")
        assert others > 0, column
    # NOT NULL columns hold values of both kinds where they are booleans.
    assert count(engine, "enable_default_condenser") > 0 and count(engine, "NOT enable_default_condenser") > 0


def test_accepted_tos_is_naive_with_nulls_and_dst_changes(seeded):
    engine, s = seeded
    assert s.null_accepted_tos == count(engine, "accepted_tos IS NULL") > 0
    listed = [datetime.fromisoformat(t) for t in DST_TIMESTAMPS]
    assert s.dst_accepted_tos == scalar(
        engine, "SELECT count(*) FROM user_settings WHERE accepted_tos = ANY(:ts)", ts=listed) > 0
    stamps = [r[0] for r in rows(engine, "SELECT accepted_tos FROM user_settings WHERE accepted_tos IS NOT NULL")]
    assert all(t.tzinfo is None for t in stamps)
    assert sum(1 for t in stamps if _local_time_is_odd(t)) >= s.dst_accepted_tos
    assert any(t.microsecond for t in stamps) and any(not t.microsecond for t in stamps)


def test_awkward_floats(seeded):
    engine, s = seeded
    data = rows(engine, "SELECT billing_margin, max_budget_per_task FROM user_settings")

    def awkward(v):
        return v is not None and (
            math.isnan(v) or v in (0.1, 1e-300, sys.float_info.max) or (v == 0 and math.copysign(1, v) < 0)
        )

    assert s.awkward_float_rows == sum(1 for a, b in data if awkward(a) or awkward(b)) > 0
    for column in (0, 1):
        seen = [r[column] for r in data if r[column] is not None]
        assert any(math.isnan(v) for v in seen)
        assert 0.1 in seen and 1e-300 in seen and sys.float_info.max in seen
        assert any(v == 0 and math.copysign(1, v) < 0 for v in seen)


# --- appending to a table that has rows -------------------------------------------------------


def test_seeding_again_continues_ids_and_keeps_the_sequence_ahead(legacy_engine):
    execute(legacy_engine,
            "INSERT INTO user_settings (keycloak_user_id) SELECT 'app-' || g FROM generate_series(1, 5) g")
    first = seed_legacy(legacy_engine, 300, seed=1)
    second = seed_legacy(legacy_engine, 200, seed=1)
    assert (first.first_id, first.last_id) == (6, 305)
    assert (second.first_id, second.last_id) == (306, 505)
    assert scalar(legacy_engine, "SELECT count(*) = max(id) AND min(id) = 1 FROM user_settings") is True
    # Each seed's duplicates stay within that seed: nothing the second call wrote repeats the first.
    assert scalar(
        legacy_engine,
        "SELECT count(*) FROM user_settings a JOIN user_settings b USING (keycloak_user_id)"
        " WHERE a.id <= 305 AND b.id > 305 AND a.keycloak_user_id <> ''",
    ) == 0
    # Ids derived from rows before the first seeded one (a shifted duplicate pattern) are valid too.
    assert count(legacy_engine, f"keycloak_user_id ~ '{UUID_RE}' OR keycloak_user_id LIKE 'app-%'"
                 " OR btrim(keycloak_user_id, E' \\t\\n') = '' OR keycloak_user_id IS NULL") == 505
    # The application's next insert takes the next id, no collision.
    new_id = scalar(legacy_engine, "INSERT INTO user_settings (keycloak_user_id) VALUES ('app-after') RETURNING id")
    assert new_id > 505
    with pytest.raises(ValueError, match="not above the highest existing id"):
        seed_legacy(legacy_engine, 10, start_id=400)
    later = seed_legacy(legacy_engine, 10, start_id=10_000)
    assert (later.first_id, later.last_id) == (10_000, 10_009)
    assert scalar(legacy_engine,
                  "INSERT INTO user_settings (keycloak_user_id) VALUES ('app-later') RETURNING id") > 10_009


def test_missing_table_is_a_clear_error(engine):
    with pytest.raises(DatabaseError) as err:
        seed_legacy(engine, 10)
    assert str(err.value) == MISSING_TABLE == "user_settings does not exist: run `alembic upgrade 0001` first"


def test_bad_arguments(legacy_engine):
    for bad in (0, -5):
        with pytest.raises(ValueError, match="users must be at least 1"):
            seed_legacy(legacy_engine, bad)
    for bad in ("10", 2.5, True):
        with pytest.raises(TypeError, match="users must be a whole number"):
            seed_legacy(legacy_engine, bad)
    assert count(legacy_engine, "true") == 0


# --- the command ------------------------------------------------------------------------------


def orgmig(args: list[str], url: str | None, cwd: Path) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("orgmig")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if url is not None:
        env["DATABASE_URL"] = url
    return subprocess.run(cmd + args, check=False, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_cli_seeds_and_prints_counts_per_kind(empty_db, alembic_cfg, engine, tmp_path):
    migrations.upgrade(alembic_cfg, "0001")
    url = empty_db.render_as_string(hide_password=False)
    done = orgmig(["seed-legacy", "--users", "1200", "--seed", "4"], url, tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Seeded 1,200 legacy users into user_settings (ids 1-1200, seed 4)" in out
    assert " users/s)" in out and " s (" in out
    for label in ("NULL keycloak_user_id", "blank keycloak_user_id", "rows sharing a keycloak_user_id",
                  "unicode names", "huge mcp_config", "plaintext secret values", "ciphertext secret values",
                  "every nullable column NULL", "accepted_tos at a DST change", "awkward floats"):
        assert label in out, label
    nulls = count(engine, "keycloak_user_id IS NULL")
    assert any(line.split()[-1] == f"{nulls:,}" for line in out.splitlines() if "NULL keycloak_user_id" in line)
    assert count(engine, "true") == 1200
    secret_rows = rows(engine, f"SELECT {', '.join(sorted(SECRET_COLUMNS))} FROM user_settings")
    secrets = [v for r in secret_rows for v in r if v]
    leaked = sum(1 for v in secrets if v in out or v in done.stderr or v[:24] in out)
    assert leaked == 0

    # --database-url wins over DATABASE_URL, and the rows are appended.
    again = orgmig(["seed-legacy", "--users", "10", "--database-url", url], "postgresql://nobody@127.0.0.1:1/none",
                   tmp_path)
    assert again.returncode == 0, again.stderr
    assert "(ids 1201-1210, seed 0)" in again.stdout


def test_cli_errors_are_one_line_with_exit_2(empty_db, tmp_path):
    url = empty_db.render_as_string(hide_password=False)
    missing = orgmig(["seed-legacy", "--users", "10"], url, tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.strip() == "orgmig: user_settings does not exist: run `alembic upgrade 0001` first"

    bad = orgmig(["seed-legacy", "--users", "ten"], url, tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "orgmig: --users must be a whole number from 1 to 50,000,000, got 'ten'"

    unreachable = orgmig(["seed-legacy", "--users", "10"], "postgresql://orgmig:s3cret-pw@127.0.0.1:1/nowhere",
                         tmp_path)
    assert unreachable.returncode == 2
    assert len(unreachable.stderr.strip().splitlines()) == 1
    assert "cannot connect" in unreachable.stderr and "s3cret-pw" not in unreachable.stderr
    assert "Traceback" not in unreachable.stderr + missing.stderr

    bad_seed = orgmig(["seed-legacy", "--users", "10", "--seed", "1.5"], url, tmp_path)
    assert bad_seed.returncode == 2
    assert bad_seed.stderr.strip() == (
        "orgmig: --seed must be a whole number from -9,223,372,036,854,775,808 to 9,223,372,036,854,775,807, got '1.5'"
    )


def test_counted_column_lists_come_from_the_table_definition():
    assert set(summary._SECRETS) == SECRET_COLUMNS
    assert list(summary._NULLABLE) == NULLABLE
    # Every column the generator writes is a column of the table, in table order.
    written = re.search(r"INSERT INTO user_settings \(([^)]*)\)", insert_sql()).group(1).split(", ")
    assert written == [c.name for c in user_settings.columns]
