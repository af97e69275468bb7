"""How `orgmig` ends when something is wrong: one line on stderr, never a traceback, never a
password, and the exit code of the error (2 for configuration and database errors)."""

from __future__ import annotations

import argparse
import re

import pytest

from app.cli import main
from app.cli import status as status_verb
from app.cli.common import whole_number
from app.errors import ConfigError, DatabaseError, OrgmigError
from app.ops import migrations
from tests.support.db import execute
from tests.support.migrate import orgmig


def one_line(p) -> str:
    """The single line a failed command printed on stderr (and nothing else there)."""
    assert "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    return lines[0]


# --- the exit-code map ------------------------------------------------------------------------


class _Custom(OrgmigError):
    exit_code = 3


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (ConfigError("ORGMIG_X is wrong"), 2, "orgmig: ORGMIG_X is wrong"),
        (DatabaseError("cannot connect to db"), 2, "orgmig: cannot connect to db"),
        (OrgmigError("the run failed"), 1, "orgmig: the run failed"),
        (_Custom("a subclass keeps its own code"), 3, "orgmig: a subclass keeps its own code"),
        (KeyboardInterrupt(), 130, "orgmig: interrupted (SIGINT); run the same command again to go on"),
    ],
)
def test_each_error_ends_as_one_line_with_its_exit_code(monkeypatch, capsys, error, code, line):
    def fail(args: argparse.Namespace) -> int:
        raise error

    monkeypatch.setattr(status_verb, "handle", fail)
    assert main(["status"]) == code
    assert capsys.readouterr().err == line + "\n"


def test_a_verb_returns_its_exit_code(monkeypatch, capsys):
    monkeypatch.setattr(status_verb, "handle", lambda args: 1)
    assert main(["status"]) == 1
    monkeypatch.setattr(status_verb, "handle", lambda args: None)
    assert main(["status"]) == 0
    assert capsys.readouterr().err == ""


def test_whole_number_option():
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", default=7, action=whole_number(1, 1_000_000))
    assert parser.parse_args([]).users == 7
    assert parser.parse_args(["--users", "1_000"]).users == 1000
    assert parser.parse_args(["--users", "1000000"]).users == 1_000_000
    for bad in ("0", "1000001", "ten", "1.5", ""):
        with pytest.raises(ConfigError) as err:
            parser.parse_args(["--users", bad])
        assert str(err.value) == f"--users must be a whole number from 1 to 1,000,000, got {bad!r}"


# --- settings and arguments -------------------------------------------------------------------


@pytest.mark.parametrize("verb", [["status"], ["verify"], ["pause"], ["resume"], ["seed-legacy", "--users", "5"],
                                  ["demo", "--users", "5"]])
def test_an_invalid_setting_is_one_line_and_exit_2(empty_db, verb):
    p = orgmig(empty_db, *verb, ORGMIG_WORKERS="abc")
    assert p.returncode == 2
    assert one_line(p) == "orgmig: invalid setting: ORGMIG_WORKERS must be a whole number, got 'abc'"


def test_an_out_of_bounds_setting_names_its_bound(empty_db):
    p = orgmig(empty_db, "status", ORGMIG_BATCH_SIZE="0")
    assert p.returncode == 2
    assert one_line(p) == "orgmig: invalid setting: ORGMIG_BATCH_SIZE must be at least 1, got '0'"


def test_a_missing_alembic_ini_is_one_line_and_exit_2(empty_db, tmp_path):
    p = orgmig(empty_db, "status", ORGMIG_ALEMBIC_INI=str(tmp_path / "alembic.ini"))
    assert p.returncode == 2
    assert one_line(p) == f"orgmig: alembic.ini not found at {tmp_path / 'alembic.ini'} (set ORGMIG_ALEMBIC_INI)"


def test_demo_users_below_one_is_one_line_and_exit_2(empty_db):
    p = orgmig(empty_db, "demo", "--users", "0")
    assert p.returncode == 2
    assert one_line(p) == "orgmig: --users must be a whole number from 1 to 50,000,000, got '0'"


# --- a database orgmig has not migrated -------------------------------------------------------


def test_pause_and_resume_on_an_empty_database(empty_db):
    for verb in ("pause", "resume"):
        p = orgmig(empty_db, verb)
        assert p.returncode == 2, p.stdout + p.stderr
        assert one_line(p) == "orgmig: orgmig_run does not exist: run `alembic upgrade head` first"
        assert p.stdout == ""


def test_verify_on_an_empty_database_has_nothing_to_verify(empty_db):
    for args in (["verify"], ["verify", "--json"]):
        p = orgmig(empty_db, *args)
        assert p.returncode == 2
        assert one_line(p) == ("orgmig: no orgmig revision is applied to this database:"
                               " run `alembic upgrade head` first")


def test_status_on_an_empty_database_lists_every_revision_as_pending(empty_db):
    p = orgmig(empty_db, "status")
    assert p.returncode == 0, p.stderr
    assert "current revision: (none)" in p.stdout
    assert "pending revisions: 0001, 0002, 0003, 0004, 0005" in p.stdout


def test_a_revision_orgmig_does_not_know_is_one_line(engine):
    execute(engine, "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
    execute(engine, "INSERT INTO alembic_version VALUES ('9f2c1d')")
    for verb in ("status", "verify"):
        p = orgmig(engine.url, verb)
        assert p.returncode == 2
        assert one_line(p).startswith("orgmig: the database is at revision 9f2c1d, which this orgmig does not know")


def test_a_sql_error_in_a_verification_file_is_one_line_naming_the_file(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "head")
    execute(engine, "DROP TABLE org_user CASCADE")
    for args in (["verify"], ["verify", "--json"]):
        p = orgmig(engine.url, *args)
        assert p.returncode == 2
        line = one_line(p)
        assert re.match(r"orgmig: \d{4}_\w+\.sql failed on postgresql\+psycopg://postgres(:\*\*\*)?@", line), line
        assert line.endswith('42P01 relation "org_user" does not exist'), line
