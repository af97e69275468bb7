"""The schema revisions 0001-0003 against a real PostgreSQL: up, down, no trace, no drift."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pytest_alembic import tests as pa_tests

from app.ops import migrations, verify
from app.schema import include_object, metadata
from tests.support.db import catalog, execute, scalar, table_md5
from tests.support.legacy import create_legacy_table

SCHEMA_REVISIONS = ["0001", "0002", "0003"]


def insert_legacy_rows(engine, n: int = 50) -> None:
    execute(
        engine,
        """
        INSERT INTO user_settings (keycloak_user_id, language, llm_api_key, accepted_tos, mcp_config,
                                   billing_margin, email)
        SELECT CASE WHEN g % 10 = 0 THEN NULL ELSE 'kc-' || g END, 'en', 'gAAAAB' || md5(g::text),
               timestamp '2024-03-01 12:00' + g * interval '1 hour', json_build_object('n', g),
               g / 7.0, 'u' || g || '@example.com'
        FROM generate_series(1, :n) g
        """,
        n=n,
    )


def test_single_head(alembic_runner):
    pa_tests.test_single_head_revision(alembic_runner)


def test_up_down_consistency(alembic_runner):
    pa_tests.test_up_down_consistency(alembic_runner)


def test_revision_ids_are_their_numbers():
    script = migrations.script_directory()
    for rev in script.walk_revisions():
        assert rev.revision.isdigit() and len(rev.revision) == 4
        assert rev.module.__file__.split("/")[-1].startswith(rev.revision + "_")


def test_upgrade_from_empty_then_verify(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    checks = verify.run(engine)
    assert checks and all(c.ok for c in checks), [c for c in checks if not c.ok]
    assert scalar(engine, "SELECT created_user_settings FROM orgmig_baseline") is True


def test_upgrade_keeps_existing_legacy_table_and_rows(engine, alembic_cfg):
    create_legacy_table(engine)
    insert_legacy_rows(engine)
    before = table_md5(engine, "user_settings")
    migrations.upgrade(alembic_cfg, "0003")
    assert table_md5(engine, "user_settings") == before
    assert scalar(engine, "SELECT created_user_settings FROM orgmig_baseline") is False


def test_downgrade_to_base_leaves_no_trace_on_existing_deployment(engine, alembic_cfg):
    create_legacy_table(engine)
    insert_legacy_rows(engine, 200)
    schema_before = catalog(engine)
    rows_before = table_md5(engine, "user_settings")
    migrations.upgrade(alembic_cfg, "0003")
    migrations.downgrade(alembic_cfg, "base")
    execute(engine, "DROP TABLE alembic_version")
    assert catalog(engine) == schema_before
    assert table_md5(engine, "user_settings") == rows_before
    assert rows_before[0] == 200


def test_downgrade_to_base_from_empty_leaves_nothing(engine, alembic_cfg):
    before = catalog(engine)
    migrations.upgrade(alembic_cfg, "0003")
    migrations.downgrade(alembic_cfg, "base")
    execute(engine, "DROP TABLE alembic_version")
    assert catalog(engine) == before


def test_downgrade_refuses_to_drop_a_created_legacy_table_holding_rows(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0001")
    insert_legacy_rows(engine, 3)
    with pytest.raises(Exception, match="allow_data_loss"):
        migrations.downgrade(alembic_cfg, "base")
    assert scalar(engine, "SELECT count(*) FROM user_settings") == 3
    forced = migrations.alembic_config(engine.url, x_args={"allow_data_loss": "true"})
    migrations.downgrade(forced, "base")
    assert scalar(engine, "SELECT to_regclass('user_settings')") is None


def test_model_matches_migrated_database(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "head")
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_object": include_object,
            },
        )
        assert compare_metadata(ctx, metadata) == []


def test_pytest_alembic_model_definitions_match_ddl(alembic_runner):
    pa_tests.test_model_definitions_match_ddl(alembic_runner)


def test_legacy_table_from_0001_matches_the_contract_ddl(pg_server):
    """0001 on an empty database builds the same user_settings as the contract's DDL."""
    from app.db import make_engine

    a, b = pg_server.create(), pg_server.create()
    ea, eb = make_engine(a), make_engine(b)
    try:
        create_legacy_table(ea)
        migrations.upgrade(migrations.alembic_config(b), "0001")
        execute(eb, "DROP TABLE orgmig_baseline; DROP TABLE alembic_version")
        assert catalog(ea) == catalog(eb)
    finally:
        ea.dispose(), eb.dispose()
        pg_server.drop(a), pg_server.drop(b)


@pytest.mark.parametrize(
    "breakage, failing_check",
    [
        ("ALTER TABLE org DROP CONSTRAINT uq_org_name", "constraint uq_org_name"),
        ("ALTER TABLE settings DROP CONSTRAINT ck_settings_one_owner;"
         " ALTER TABLE settings ADD CONSTRAINT ck_settings_one_owner"
         " CHECK (num_nonnulls(org_id, user_id) = 1) NOT VALID", "constraint ck_settings_one_owner"),
        ("DROP INDEX ix_org_user_role_id", "index behind foreign key fk_org_user_role_id_role"),
        ("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'uq_user_keycloak_user_id'::regclass",
         "no invalid index on the organizational tables"),
        ("ALTER TABLE user_settings ALTER COLUMN max_iterations TYPE bigint",
         "user_settings columns match the legacy contract"),
        ("ALTER TABLE \"user\" ALTER COLUMN accepted_tos TYPE timestamp", "timestamps are timestamptz"),
        ("DROP TABLE orgmig_user_settings_link", "table orgmig_user_settings_link exists"),
        ("DROP TRIGGER trg_org_user_updated_at ON org_user", "updated_at trigger on org_user"),
        ("ALTER TABLE org_user_facility DROP CONSTRAINT fk_org_user_facility_facility_id_facility",
         "constraint fk_org_user_facility_facility_id_facility"),
        ("DROP INDEX ix_user_email_normalized", "index ix_user_email_normalized"),
        ("INSERT INTO orgmig_run (step, direction, status, batch_size, total_rows, rows_done)"
         " VALUES ('x', 'upgrade', 'finished', 10, 5, 3)", "finished runs are complete"),
    ],
)
def test_verification_fails_on_a_broken_database(engine, alembic_cfg, breakage, failing_check):
    migrations.upgrade(alembic_cfg, "0006" if "facility" in breakage or "email" in breakage
                       or "trg_" in breakage else "0003")
    assert all(c.ok for c in verify.run(engine))
    execute(engine, breakage)
    failed = {c.check_name for c in verify.run(engine) if not c.ok}
    assert failing_check in failed


def test_verification_runs_read_only(engine, alembic_cfg, tmp_path):
    """Files run inside a READ ONLY transaction: a file that writes fails instead of writing."""
    migrations.upgrade(alembic_cfg, "0003")
    writer = tmp_path / "9999_writes.sql"
    writer.write_text("INSERT INTO role (name, rank) VALUES ('x', 5) RETURNING 'c', true, 'd';")
    with pytest.raises(Exception, match="read-only transaction"):
        verify.run_file(engine, writer, "9999")
    assert scalar(engine, "SELECT count(*) FROM role") == 0


def test_offline_sql_is_reviewable(capsys, alembic_cfg):
    from alembic import command

    command.upgrade(alembic_cfg, "0003", sql=True)
    script = capsys.readouterr().out
    assert "SET lock_timeout" in script and "SET statement_timeout" in script
    assert script.index("SET lock_timeout") < script.index("CREATE TABLE role")
    assert 'CREATE TABLE "user"' in script
    assert script.count("COMMIT;") >= 3  # one transaction per revision
