"""--purge-legacy, and importing an anonymous session's collections."""

from __future__ import annotations

import orjson
import pytest

from app.collections import migrate_all
from app.errors import ConfigError
from tests.support.collections import (
    add_account,
    add_collections,
    add_users,
    import_anon,
    legacy_collection,
    migrate_one,
    new_value,
    reports,
    two_users_and_an_orphan,
)

MOVED_C1 = {"id": "c1", "name": "A", "created": "2021-03-05T21:14:00Z", "changed": "2022-04-11T07:02:00Z",
            "num_members": 1, "members": ["1"]}


def test_purge_deletes_only_what_moved(rdb, app_db):
    u1, u2 = two_users_and_an_orphan(app_db, rdb)
    add_collections(rdb, "anon-1", [legacy_collection("c1", "Anon", [])])
    migrate_one(app_db, rdb, u2)  # old-b moves first, without purge

    result = migrate_all(rdb, app_db, purge=True)
    assert result.counts["moved"] == 1 and result.counts["done"] == 1 and result.counts["purged"] == 2
    assert sorted(rdb.hkeys("collections")) == [b"anon-1", b"old-none"]  # reported and anonymous kept
    assert new_value(rdb, u1) == [MOVED_C1]
    assert new_value(rdb, u2)[0]["name"] == "B"
    assert sorted(rdb.hkeys("collections_migrated")) == [b"old-a", b"old-b"]
    # A repeat after the purge changes nothing.
    snapshot = {k: rdb.hgetall(k) for k in rdb.keys()}
    again = migrate_all(rdb, app_db, purge=True)
    assert again.counts["moved"] == 0 and again.counts["purged"] == 0
    assert {k: rdb.hgetall(k) for k in rdb.keys()} == snapshot


def test_purge_keeps_a_legacy_value_written_after_the_move(rdb, app_db):
    (uid,) = add_users(app_db, "a@x.org")
    add_account(rdb, "old-a", "a@x.org")
    add_collections(rdb, "old-a", [legacy_collection("c1", "A", ["1"])])
    migrate_all(rdb, app_db)
    later = add_collections(rdb, "old-a", [legacy_collection("c1", "A", ["1"]), legacy_collection("c2", "Late", [])])

    result = migrate_all(rdb, app_db, purge=True)
    assert result.counts["purge_changed"] == 1 and result.counts["purged"] == 0
    assert rdb.hget("collections", "old-a") == later
    assert new_value(rdb, uid) == [MOVED_C1]
    ((old, reason, migrated, detail),) = reports(app_db)
    assert (old, reason, migrated, detail["kept"]) == ("old-a", "legacy_changed_after_migration", True, True)


def test_anonymous_collections_are_imported_once(rdb, app_db):
    (uid,) = add_users(app_db, "a@x.org")
    rdb.hset("collections2", str(uid), b'[{"id":"c1","name":"Mine","members":[]}]')
    raw = add_collections(rdb, "anon-7", [legacy_collection("c1", "Anonymous work", ["BXD:1"]),
                                          legacy_collection("c2", "More", [])])
    result = import_anon(app_db, rdb, uid, "anon-7")
    assert result.counts["moved"] == 1 and result.counts["collections_added"] == 2
    value = new_value(rdb, uid)
    assert [c["name"] for c in value] == ["Mine", "Anonymous work", "More"]
    assert value[1]["id"] != "c1" and value[1]["members"] == ["BXD:1"]  # the clash kept both
    assert [r[1] for r in reports(app_db)] == ["id_clash"]
    assert rdb.hget("collections", "anon-7") == raw  # kept until --purge-legacy

    snapshot = {k: rdb.hgetall(k) for k in rdb.keys()}
    again = import_anon(app_db, rdb, uid, "anon-7")
    assert again.counts["done"] == 1 and again.counts["moved"] == 0
    assert {k: rdb.hgetall(k) for k in rdb.keys()} == snapshot
    # `migrate --all` leaves anonymous ids alone, and counts this one as moved before.
    assert migrate_all(rdb, app_db).counts["done"] == 1
    assert {k: rdb.hgetall(k) for k in rdb.keys()} == snapshot

    purged = import_anon(app_db, rdb, uid, "anon-7", purge=True)
    assert purged.counts["purged"] == 1 and not rdb.hexists("collections", "anon-7")
    assert new_value(rdb, uid) == value


def test_migrate_all_leaves_anonymous_collections(rdb, app_db):
    (uid,) = add_users(app_db, "a@x.org")
    add_collections(rdb, "anon-1", [legacy_collection("c1", "A", ["1"])])
    add_collections(rdb, "anon-odd", b'[{"members": 5}, 3]')  # counted, not read further
    result = migrate_all(rdb, app_db)
    assert result.counts["anonymous"] == 2 and result.counts["moved"] == 0
    assert rdb.hlen("collections2") == 0 and rdb.hlen("collections_migrated") == 0
    import_anon(app_db, rdb, uid, "anon-1", purge=True)
    assert new_value(rdb, uid) == [MOVED_C1] and rdb.hkeys("collections") == [b"anon-odd"]


def test_importing_a_registered_accounts_id_is_refused(rdb, app_db):
    u1, u2 = add_users(app_db, "a@x.org", "b@x.org")
    add_account(rdb, "old-a", "a@x.org")
    raw = add_collections(rdb, "old-a", [legacy_collection("c1", "A", ["1"])])
    with pytest.raises(ConfigError, match="registered account's id") as err:
        import_anon(app_db, rdb, u2, "old-a")
    assert err.value.exit_code == 2
    assert rdb.hlen("collections2") == 0 and rdb.hget("collections", "old-a") == raw
    with pytest.raises(ConfigError, match="no app user with id 999999"):
        import_anon(app_db, rdb, 999_999, "anon-x")


def test_malformed_anonymous_collections_are_reported(rdb, app_db):
    (uid,) = add_users(app_db, "a@x.org")
    add_collections(rdb, "anon-bad", b"[{]")
    result = import_anon(app_db, rdb, uid, "anon-bad")
    assert result.counts["reported"] == 1 and rdb.hlen("collections2") == 0
    assert [(r[0], r[1], r[2]) for r in reports(app_db)] == [("anon-bad", "malformed_collections_json", False)]


def test_a_new_value_that_is_not_a_list_is_reported_and_left_alone(rdb, app_db):
    (uid,) = add_users(app_db, "a@x.org")
    rdb.hset("collections2", str(uid), b'{"not": "a list"}')
    add_account(rdb, "old-a", "a@x.org")
    add_collections(rdb, "old-a", [legacy_collection("c1", "A", ["1"])])
    result = migrate_all(rdb, app_db)
    assert result.counts["reported"] == 1
    assert orjson.loads(rdb.hget("collections2", str(uid))) == {"not": "a list"}
    assert not rdb.hexists("collections_migrated", "old-a")
    assert [r[1] for r in reports(app_db)] == ["target_malformed"]
