"""Moving collections to the app user ids: the resulting Redis values, the marker, the reports."""

from __future__ import annotations

import hashlib
import unicodedata
import uuid

import orjson
import pytest

from app.collections import migrate_all, plan, run
from app.collections.reported import source_id
from app.collections.store import CLASH_NAMESPACE
from tests.support.collections import (
    add_account,
    add_collections,
    add_users,
    legacy_collection,
    migrate_one,
    new_value,
    reports,
    two_users_and_an_orphan,
)
from tests.support.db import scalar


def moved(cid, name, members, created="2021-03-05T21:14:00Z", changed="2022-04-11T07:02:00Z"):
    return {"id": cid, "name": name, "created": created, "changed": changed, "num_members": len(members),
            "members": members}


def test_an_account_moves_to_the_app_user_with_its_email(rdb, app_db):
    other, uid = add_users(app_db, "someone@example.org", "alice@example.com")
    add_account(rdb, "old-alice", "  Alice@Example.COM ")
    raw = add_collections(rdb, "old-alice", [
        legacy_collection("c1", "  Liver traits ", ["BXD:1", "BXD:2"]),
        legacy_collection("c2", "Mouse", [], created="Jan 1 2020 12:00AM", changed="Dec 31 2020 12:59PM"),
    ])
    result = migrate_all(rdb, app_db)
    assert result.counts["moved"] == 1 and result.counts["collections_added"] == 2
    assert new_value(rdb, uid) == [
        moved("c1", "Liver traits", ["BXD:1", "BXD:2"]),
        moved("c2", "Mouse", [], created="2020-01-01T00:00:00Z", changed="2020-12-31T12:59:00Z"),
    ]
    # The new value's keys come in the documented order.
    assert list(new_value(rdb, uid)[0]) == ["id", "name", "created", "changed", "num_members", "members"]
    assert new_value(rdb, other) is None
    assert rdb.hget("collections_migrated", "old-alice") == str(uid).encode()
    assert rdb.hget("collections_migrated_sha1", "old-alice") == hashlib.sha1(raw).hexdigest().encode()
    assert rdb.hget("collections", "old-alice") == raw  # kept until --purge-legacy
    assert reports(app_db) == []


def test_malformed_json_is_reported_and_skips_that_account_only(rdb, app_db):
    ok, bad, bad_shape, bad_user = add_users(app_db, "ok@x.org", "bad@x.org", "shape@x.org", "user@x.org")
    add_account(rdb, "old-ok", "ok@x.org")
    add_collections(rdb, "old-ok", [legacy_collection("c1", "Fine", ["a"])])
    add_account(rdb, "old-bad", "bad@x.org")
    add_collections(rdb, "old-bad", b'[{"id": "c1", "name": "cut off')
    add_account(rdb, "old-shape", "shape@x.org")
    add_collections(rdb, "old-shape", [legacy_collection("c1", "Fine", ["a"]), {"name": "no id", "members": []}])
    rdb.hset("users", "old-user", b"{not json")
    add_collections(rdb, "old-user", [legacy_collection("c1", "Fine", ["a"])])

    result = migrate_all(rdb, app_db)
    assert result.counts["moved"] == 1 and result.counts["reported"] == 3
    assert new_value(rdb, ok) == [moved("c1", "Fine", ["a"])]
    for uid in (bad, bad_shape, bad_user):
        assert new_value(rdb, uid) is None
    for old in ("old-bad", "old-shape", "old-user"):
        assert rdb.hget("collections_migrated", old) is None
        assert rdb.hexists("collections", old)
    found = {(old, reason, migrated) for old, reason, migrated, _ in reports(app_db)}
    assert found == {("old-bad", "malformed_collections_json", False),
                     ("old-shape", "malformed_collections_json", False),
                     ("old-user", "malformed_user_json", False)}
    detail = {old: d for old, _, _, d in reports(app_db)}
    assert detail["old-shape"]["problem"] == "collection #1 has no id (a string or an integer)"
    assert detail["old-bad"]["user_id"] == bad


def test_missing_and_shared_emails_are_reported_never_guessed(rdb, app_db):
    u_single, u_dup1, u_dup2, u_shared = add_users(
        app_db, "single@x.org", "twice@x.org", " TWICE@x.org", "shared@x.org")
    add_account(rdb, "old-noemail", None)
    add_account(rdb, "old-blank", "   ")
    add_account(rdb, "old-shared-1", "shared@x.org")
    add_account(rdb, "old-shared-2", "Shared@X.org ")  # the same address, another case
    add_account(rdb, "old-twice", "twice@x.org")
    add_account(rdb, "old-nobody", "nobody@x.org")
    add_account(rdb, "old-single", "single@x.org")
    for old in ("old-noemail", "old-blank", "old-shared-1", "old-shared-2", "old-twice", "old-nobody",
                "old-single"):
        add_collections(rdb, old, [legacy_collection(f"{old}-c", "C", ["m"])])

    before = plan(rdb, app_db).as_dict()
    assert before["reasons"] == {"email_missing": 2, "email_shared_by_app_users": 1,
                                 "email_shared_by_old_accounts": 2, "no_app_user": 1}
    assert before["counts"]["move"] == 1
    migrate_all(rdb, app_db)

    assert new_value(rdb, u_single) == [moved("old-single-c", "C", ["m"])]
    for uid in (u_dup1, u_dup2, u_shared):
        assert new_value(rdb, uid) is None
    assert rdb.hkeys("collections_migrated") == [b"old-single"]
    rows = {(old, reason): (migrated, d) for old, reason, migrated, d in reports(app_db)}
    assert set(rows) == {("old-noemail", "email_missing"), ("old-blank", "email_missing"),
                         ("old-shared-1", "email_shared_by_old_accounts"),
                         ("old-shared-2", "email_shared_by_old_accounts"),
                         ("old-twice", "email_shared_by_app_users"), ("old-nobody", "no_app_user")}
    assert all(migrated is False for migrated, _ in rows.values())
    assert rows[("old-shared-1", "email_shared_by_old_accounts")][1]["old_ids"] == ["old-shared-2"]
    assert rows[("old-twice", "email_shared_by_app_users")][1]["user_ids"] == [u_dup1, u_dup2]
    # No email anywhere in the reports.
    assert "@" not in orjson.dumps([d for _, d in rows.values()]).decode()


def test_report_source_id_is_a_stable_hash_a_dba_can_compute(rdb, app_db):
    add_account(rdb, "0f8a-ünï", None)
    add_collections(rdb, "0f8a-ünï", [legacy_collection("c", "C", [])])
    migrate_all(rdb, app_db)
    in_sql = scalar(app_db, "SELECT ('x' || substr(encode(sha256(convert_to(:o, 'UTF8')), 'hex'), 1, 16))"
                            "::bit(64)::bigint", o="0f8a-ünï")
    assert in_sql == source_id("0f8a-ünï")
    assert scalar(app_db, "SELECT source_id FROM orgmig_report WHERE step = 'collections'") == in_sql


def test_unicode_emails_names_and_members(rdb, app_db):
    nfd = unicodedata.normalize("NFD", "José.Müller@Exämple.org")
    (uid,) = add_users(app_db, "josé.müller@exämple.org")
    add_account(rdb, "old-jose", nfd)
    name = unicodedata.normalize("NFD", "  Gènes du foie 🧬 ")
    add_collections(rdb, "old-jose", [legacy_collection("c1", name, ["BXD:Ω1", "日本"])])
    migrate_all(rdb, app_db)
    (value,) = new_value(rdb, uid)
    assert value["name"] == "Gènes du foie 🧬"
    assert unicodedata.is_normalized("NFC", value["name"])
    assert value["members"] == ["BXD:Ω1", "日本"]
    # Stored as UTF-8 JSON, as GeneNetwork reads it.
    assert "Gènes".encode() in rdb.hget("collections2", str(uid))


def test_unparseable_timestamps_become_null_and_are_reported(rdb, app_db):
    (uid,) = add_users(app_db, "t@x.org")
    add_account(rdb, "old-t", "t@x.org")
    add_collections(rdb, "old-t", [
        {"id": "c1", "name": "A", "created_timestamp": "Feb 30 2021 09:14PM", "changed_timestamp": "yesterday",
         "num_members": 0, "members": []},
        {"id": "c2", "name": "B", "created_timestamp": "2021-03-05T21:14:00", "members": ["x"]},
    ])
    migrate_all(rdb, app_db)
    assert new_value(rdb, uid) == [
        {"id": "c1", "name": "A", "created": None, "changed": None, "num_members": 0, "members": []},
        {"id": "c2", "name": "B", "created": "2021-03-05T21:14:00Z", "changed": None, "num_members": 1,
         "members": ["x"]},
    ]
    ((old, reason, migrated, detail),) = reports(app_db)
    assert (old, reason, migrated) == ("old-t", "unparseable_timestamp", True)
    assert detail["timestamps"] == [
        {"collection": "c1", "field": "created", "legacy": "Feb 30 2021 09:14PM"},
        {"collection": "c1", "field": "changed", "legacy": "yesterday"},
        {"collection": "c2", "field": "changed", "legacy": None},
    ]


def test_an_id_clash_keeps_both_and_the_existing_value_byte_for_byte(rdb, app_db):
    (uid,) = add_users(app_db, "c@x.org")
    existing = (b'[ {"id":"c1","name":"Made in the new app","created":"2024-01-01T00:00:00Z",'
                b'"changed":"2024-01-01T00:00:00Z","num_members":1,"members":["NEW:1"],"extra":{"k":[]}},'
                b'{"id":"c2","name":"Copied","created_timestamp":"Mar 05 2021 09:14PM","num_members":1,'
                b'"members":["BXD:7"]} ]')
    rdb.hset("collections2", str(uid), existing)
    add_account(rdb, "old-c", "c@x.org")
    add_collections(rdb, "old-c", [
        legacy_collection("c1", "Old one", ["BXD:1"]),    # same id, other content: a clash
        legacy_collection("c2", " Copied ", ["BXD:7"]),   # same id, name and members: already there
        legacy_collection("c3", "New", ["BXD:3"]),
    ])
    result = migrate_all(rdb, app_db)
    assert result.counts["id_clashes"] == 1 and result.counts["collections_already_there"] == 1

    raw = rdb.hget("collections2", str(uid))
    assert raw.startswith(existing[:existing.rindex(b"]")])  # the app's text untouched
    value = orjson.loads(raw)
    new_id = str(uuid.uuid5(CLASH_NAMESPACE, "old-c/c1"))
    assert [c["id"] for c in value] == ["c1", "c2", new_id, "c3"]
    assert value[0]["name"] == "Made in the new app" and value[0]["extra"] == {"k": []}
    assert value[2] == moved(new_id, "Old one", ["BXD:1"])
    assert value[3] == moved("c3", "New", ["BXD:3"])
    ((old, reason, migrated, detail),) = reports(app_db)
    assert (old, reason, migrated) == ("old-c", "id_clash", True)
    assert detail["clashes"] == [{"id": "c1", "moved_as": new_id}] and detail["user_id"] == uid


def test_a_repeat_changes_nothing(rdb, app_db):
    u1, u2 = two_users_and_an_orphan(app_db, rdb)
    first = migrate_all(rdb, app_db)
    assert first.counts["moved"] == 2

    # The app edits a moved list; the legacy value is still there: a repeat must not add it back.
    rdb.hset("collections2", str(u1), b"[]")
    snapshot = {k: rdb.hgetall(k) for k in rdb.keys()}
    reported = reports(app_db)
    rows = scalar(app_db, "SELECT array_agg(xmin::text ORDER BY id) FROM orgmig_report")
    second = migrate_all(rdb, app_db)
    assert second.counts["moved"] == 0 and second.counts["done"] == 2 and second.counts["reported"] == 1
    assert {k: rdb.hgetall(k) for k in rdb.keys()} == snapshot
    assert reports(app_db) == reported
    assert scalar(app_db, "SELECT array_agg(xmin::text ORDER BY id) FROM orgmig_report") == rows  # not rewritten
    one = migrate_one(app_db, rdb, u2)
    assert one.counts["done"] == 1 and one.counts["moved"] == 0
    # The per-user path built its email index (orgmig's lookup, not data); nothing else changed.
    everything = {k: rdb.hgetall(k) for k in rdb.keys()}
    assert {k: v for k, v in everything.items() if not k.startswith(b"collections_email_index")} == snapshot
    assert migrate_one(app_db, rdb, u2).counts["done"] == 1
    assert {k: rdb.hgetall(k) for k in rdb.keys()} == everything


def test_migrate_one_user(rdb, app_db):
    u1, u2 = add_users(app_db, "a@x.org", "b@x.org")
    add_account(rdb, "old-a", "a@x.org")
    add_account(rdb, "old-b", "b@x.org")
    add_collections(rdb, "old-a", [legacy_collection("c1", "A", ["1"])])
    add_collections(rdb, "old-b", [legacy_collection("c1", "B", ["2"])])
    result = migrate_one(app_db, rdb, u2)
    assert result.counts["moved"] == 1
    assert new_value(rdb, u2) == [moved("c1", "B", ["2"])]
    assert new_value(rdb, u1) is None and rdb.hkeys("collections_migrated") == [b"old-b"]


def test_a_report_is_cleared_once_the_account_moves(rdb, app_db):
    add_account(rdb, "old-late", "late@x.org")
    add_collections(rdb, "old-late", [legacy_collection("c1", "L", ["1"])])
    migrate_all(rdb, app_db)
    assert [r[1] for r in reports(app_db)] == ["no_app_user"]
    (uid,) = add_users(app_db, "late@x.org")  # the user signs up afterwards
    migrate_all(rdb, app_db)
    assert reports(app_db) == []
    assert new_value(rdb, uid) == [moved("c1", "L", ["1"])]


def test_a_report_that_cannot_be_written_ends_the_run(rdb, app_db, monkeypatch):
    for i in range(6):
        add_account(rdb, f"old-{i}", None)
        add_collections(rdb, f"old-{i}", [legacy_collection("c", "C", [])])

    def broken(*args, **kwargs):
        raise RuntimeError("the report table is gone")

    monkeypatch.setattr(run.reports, "record", broken)
    with pytest.raises(RuntimeError, match="the report table is gone"):
        migrate_all(rdb, app_db, chunk=2)


def _big(cid: int, name: str, members: list) -> dict:
    return {"id": cid, "name": name, "created": "2024-01-01T00:00:00Z", "changed": "2024-01-01T00:00:00Z",
            "num_members": len(members), "members": members}


def test_a_collection_with_a_15_digit_id_already_there_is_not_added_again(rdb, app_db):
    # Lua's cjson reads numbers as doubles: 123456789012345 became "1.2345678901234e+14" and never
    # matched the moved id, so the same collection was appended a second time.
    (uid,) = add_users(app_db, "big@x.org")
    rdb.hset("collections2", str(uid), orjson.dumps([_big(123456789012345, "Copied", ["BXD:7", 12345678901234567])]))
    add_account(rdb, "old-big", "big@x.org")
    add_collections(rdb, "old-big", [dict(legacy_collection("ignored", "Copied", []),
                                          id=123456789012345, members=["BXD:7", 12345678901234567])])
    result = migrate_all(rdb, app_db)
    assert result.counts["collections_already_there"] == 1 and result.counts["collections_added"] == 0
    assert [c["id"] for c in new_value(rdb, uid)] == [123456789012345]
    assert reports(app_db) == []


def test_another_collection_under_a_17_digit_id_is_a_clash(rdb, app_db):
    # 12345678901234567 is not a double: it was read as 12345678901234568 and the moved collection
    # was appended under the id the list already held, without an id_clash report.
    (uid,) = add_users(app_db, "big@x.org")
    rdb.hset("collections2", str(uid), orjson.dumps([_big(12345678901234567, "Made in the new app", [])]))
    add_account(rdb, "old-big", "big@x.org")
    add_collections(rdb, "old-big", [dict(legacy_collection("ignored", "Old one", ["BXD:1"]), id=12345678901234567),
                                     dict(legacy_collection("ignored", "Other", []), id=12345678901234568)])
    result = migrate_all(rdb, app_db)
    new_id = str(uuid.uuid5(CLASH_NAMESPACE, "old-big/12345678901234567"))
    assert result.counts["id_clashes"] == 1 and result.counts["collections_added"] == 2
    assert [c["id"] for c in new_value(rdb, uid)] == [12345678901234567, new_id, 12345678901234568]
    ((old, reason, migrated, detail),) = reports(app_db)
    assert (old, reason, migrated) == ("old-big", "id_clash", True)
    assert detail["clashes"] == [{"id": "12345678901234567", "moved_as": new_id}]


def test_a_number_member_and_its_digits_as_text_are_not_the_same_collection(rdb, app_db):
    (uid,) = add_users(app_db, "m@x.org")
    rdb.hset("collections2", str(uid), orjson.dumps([_big(7, "Set", [12345678901234567])]))
    add_account(rdb, "old-m", "m@x.org")
    add_collections(rdb, "old-m", [dict(legacy_collection("ignored", "Set", ["12345678901234567"]), id=7),
                                   dict(legacy_collection("ignored", "Set", [12345678901234568]), id="7")])
    result = migrate_all(rdb, app_db)
    assert result.counts["id_clashes"] == 2 and result.counts["collections_already_there"] == 0
    assert [c["members"] for c in new_value(rdb, uid)] == [[12345678901234567], ["12345678901234567"],
                                                          [12345678901234568]]
