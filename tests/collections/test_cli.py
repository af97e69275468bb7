"""`orgmig collections ...` as an operator runs it: the text, the JSON, the exit codes."""

from __future__ import annotations

import json

from tests.support.collections import add_account, add_collections, add_users, legacy_collection, new_value
from tests.support.migrate import orgmig


def _legacy(rdb):
    add_account(rdb, "old-a", "a@x.org")
    add_account(rdb, "old-none", None)
    add_collections(rdb, "old-a", [legacy_collection("c1", "A", ["1", "2"])])
    add_collections(rdb, "old-none", [legacy_collection("c1", "N", ["3"])])
    add_collections(rdb, "anon-1", [legacy_collection("c1", "Anon", [])])


def test_plan_lists_every_account_and_writes_nothing(rdb, app_db, redis_url):
    (uid,) = add_users(app_db, "a@x.org")
    _legacy(rdb)
    before = {k: rdb.hgetall(k) for k in rdb.keys()}
    p = orgmig(app_db.url, "collections", "plan", "--redis-url", redis_url)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert f"move      old-a -> user {uid}: 1 collection, 2 members" in lines
    assert "reported  old-none: email_missing" in lines
    assert "anonymous anon-1: 1 collection (import-anonymous moves them)" in lines
    assert lines[-1] == ("plan: 1 account to move (1 collection, 2 members), 0 moved already, 1 reported"
                         " (email_missing 1), 1 anonymous")
    j = orgmig(app_db.url, "collections", "plan", "--json", "--redis-url", redis_url)
    data = json.loads(j.stdout)
    assert data["counts"]["move"] == 1 and data["reasons"] == {"email_missing": 1}
    assert {"old_id": "old-a", "status": "move", "user_id": uid, "collections": 1, "members": 2,
            "already_there": 0, "id_overlap": 0} in data["accounts"]
    assert {k: rdb.hgetall(k) for k in rdb.keys()} == before


def test_migrate_all_then_one_user(rdb, app_db, redis_url):
    (uid,) = add_users(app_db, "a@x.org")
    _legacy(rdb)
    p = orgmig(app_db.url, "collections", "migrate", "--all", "--redis-url", redis_url)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("collections: 1 account moved (1 collection added, 0 already there, 0 id clashes),"
                               " 0 moved before, 1 reported (email_missing 1), 1 anonymous left for import-anonymous")
    assert [c["id"] for c in new_value(rdb, uid)] == ["c1"]
    again = orgmig(app_db.url, "collections", "migrate", "--user", str(uid), "--redis-url", redis_url)
    assert again.returncode == 0 and "0 accounts moved" in again.stdout and "1 moved before" in again.stdout


def test_migrate_one_user_that_cannot_move_exits_1(rdb, app_db, redis_url):
    u1, _ = add_users(app_db, "dup@x.org", "DUP@x.org")
    add_account(rdb, "old-d", "dup@x.org")
    add_collections(rdb, "old-d", [legacy_collection("c1", "A", [])])
    p = orgmig(app_db.url, "collections", "migrate", "--user", str(u1), "--redis-url", redis_url)
    assert p.returncode == 1
    assert "old account old-d: email_shared_by_app_users (not moved)" in p.stdout
    missing = orgmig(app_db.url, "collections", "migrate", "--user", "424242", "--redis-url", redis_url)
    assert missing.returncode == 2 and missing.stderr == "orgmig: there is no app user with id 424242\n"


def test_import_anonymous_and_its_refusal(rdb, app_db, redis_url):
    (uid,) = add_users(app_db, "a@x.org")
    _legacy(rdb)
    refused = orgmig(app_db.url, "collections", "import-anonymous", "--anon-id", "old-a", "--user", str(uid),
                     "--redis-url", redis_url)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.startswith("orgmig: 'old-a' is a registered account's id") and \
        len(refused.stderr.splitlines()) == 1
    args = ("collections", "import-anonymous", "--anon-id", "anon-1", "--user", str(uid), "--redis-url", redis_url)
    first = orgmig(app_db.url, *args)
    assert first.returncode == 0 and first.stdout == f"anon-1 -> user {uid}: 1 collection added, 0 already there," \
                                                     " 0 id clashes\n"
    second = orgmig(app_db.url, *args)
    assert second.returncode == 0 and second.stdout == f"anon-1: imported before into user {uid}; nothing added\n"
    assert [c["name"] for c in new_value(rdb, uid)] == ["Anon"]


def test_an_unreachable_redis_is_one_line_without_the_password(app_db):
    url = "redis://:s3cr3t-pw@127.0.0.1:1/13"
    p = orgmig(app_db.url, "collections", "plan", "--redis-url", url)
    assert p.returncode == 2
    assert p.stderr.startswith("orgmig: cannot connect to Redis at redis://:***@127.0.0.1:1/13: ")
    assert len(p.stderr.splitlines()) == 1 and "s3cr3t-pw" not in p.stderr + p.stdout
    bad = orgmig(app_db.url, "collections", "plan", REDIS_URL="http://nowhere")
    assert bad.returncode == 2 and "REDIS_URL must start with redis://" in bad.stderr
