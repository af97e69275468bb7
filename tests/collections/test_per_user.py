"""The login-time flow, one app user at a time (app.collections.per_user): the offer, the move,
repeats, the reasons nothing moves, anonymous imports, and the email index that finds the old
account without reading every old account."""

from __future__ import annotations

import threading
import time

import orjson
import pytest
import redis

from app.collections import Offer, RegisteredAccount, UnknownAppUser, email_index, legacy_offer, migrate_all
from tests.support.collections import (
    add_account,
    add_collections,
    add_users,
    import_anon,
    legacy_collection,
    migrate_one,
    new_value,
    reports,
)

MOVED = {"id": "c1", "name": "Liver traits", "created": "2021-03-05T21:14:00Z", "changed": "2022-04-11T07:02:00Z",
         "num_members": 2, "members": ["BXD:1", "BXD:2"]}


def offer(engine, r, user_id) -> Offer:
    with engine.connect() as conn:
        return legacy_offer(conn, r, user_id)


def data(r: redis.Redis) -> dict:
    """Every key but the email index (orgmig's lookup, not data)."""
    return {k: r.hgetall(k) for k in r.keys() if not k.startswith(b"collections_email_index")}


def _alice(rdb, app_db) -> int:
    other, uid = add_users(app_db, "bob@x.org", "alice@example.com")
    add_account(rdb, "old-bob", "bob@x.org")
    add_account(rdb, "old-alice", " Alice@Example.COM")
    add_collections(rdb, "old-alice", [legacy_collection("c1", "  Liver traits ", ["BXD:1", "BXD:2"]),
                                       legacy_collection("c2", "Mouse", [])])
    return uid


def test_the_offer_names_what_would_move_and_writes_nothing(rdb, app_db):
    uid = _alice(rdb, app_db)
    before = data(rdb)
    found = offer(app_db, rdb, uid)
    assert found == Offer(uid, None, "old-alice", ("Liver traits", "Mouse"), 2)
    assert found.to_json() == {"app_user_id": uid, "can_migrate": True, "reason": None, "old_id": "old-alice",
                               "collections": 2, "names": ["Liver traits", "Mouse"], "members": 2}
    assert data(rdb) == before and reports(app_db) == []


def test_migrate_moves_them_and_a_repeat_or_the_bulk_run_changes_nothing(rdb, app_db):
    uid = _alice(rdb, app_db)
    result = migrate_one(app_db, rdb, uid)
    assert result.counts["moved"] == 1 and result.counts["collections_added"] == 2
    assert new_value(rdb, uid)[0] == MOVED and [c["id"] for c in new_value(rdb, uid)] == ["c1", "c2"]
    assert rdb.hget("collections_migrated", "old-alice") == str(uid).encode()
    assert result.to_json()["accounts"] == [{"old_id": "old-alice", "user_id": uid, "status": "moved", "added": 2,
                                             "already_there": 0, "clashes": []}]
    assert offer(app_db, rdb, uid).to_json() == {
        "app_user_id": uid, "can_migrate": False, "reason": "migrated_already", "old_id": "old-alice",
        "collections": 0, "names": [], "members": 0, "moved_to": uid}

    snapshot = {k: rdb.hgetall(k) for k in rdb.keys()}
    again = migrate_one(app_db, rdb, uid)
    assert again.counts["done"] == 1 and again.counts["moved"] == 0
    assert again.to_json()["accounts"] == [{"old_id": "old-alice", "user_id": uid, "status": "done", "added": 0,
                                            "already_there": 0, "clashes": []}]
    bulk = migrate_all(rdb, app_db)
    assert bulk.counts["moved"] == 0 and bulk.counts["done"] == 1
    assert {k: rdb.hgetall(k) for k in rdb.keys()} == snapshot


def test_an_email_two_old_accounts_hold_moves_nothing_and_is_reported(rdb, app_db):
    (uid,) = add_users(app_db, "dup@x.org")
    add_account(rdb, "old-1", "dup@x.org")
    add_account(rdb, "old-2", "DUP@x.org ")  # no collections: still a second holder of the address
    add_collections(rdb, "old-1", [legacy_collection("c1", "A", [])])
    found = offer(app_db, rdb, uid)
    assert (found.reason, found.old_ids, found.collections) == ("email_shared_by_old_accounts", ("old-1", "old-2"), 0)
    result = migrate_one(app_db, rdb, uid)
    assert result.counts["moved"] == 0 and new_value(rdb, uid) is None
    assert not rdb.exists("collections_migrated")
    assert [(old, reason, migrated, d["old_ids"]) for old, reason, migrated, d in reports(app_db)] == [
        ("old-1", "email_shared_by_old_accounts", False, ["old-2"])]


def test_an_email_two_app_users_hold_moves_nothing(rdb, app_db):
    u1, u2 = add_users(app_db, "dup@x.org", "  DUP@x.org")
    add_account(rdb, "old-d", "dup@x.org")
    add_collections(rdb, "old-d", [legacy_collection("c1", "A", [])])
    found = offer(app_db, rdb, u1)
    assert (found.reason, found.old_id, found.user_ids) == ("email_shared_by_app_users", "old-d", (u1, u2))
    assert migrate_one(app_db, rdb, u2).counts["reported"] == 1 and not rdb.exists("collections2")


def test_no_old_account_no_email_nothing_to_move(rdb, app_db):
    lonely, blank, empty = add_users(app_db, "new@x.org", None, "empty@x.org")
    add_account(rdb, "old-empty", "empty@x.org")
    add_collections(rdb, "old-empty", [])
    assert offer(app_db, rdb, lonely).reason == "no_old_account"
    assert migrate_one(app_db, rdb, lonely).counts["no_old_account"] == 1
    assert offer(app_db, rdb, blank).reason == "app_user_email_missing"
    assert migrate_one(app_db, rdb, blank).counts["no_email"] == 1
    assert offer(app_db, rdb, empty) == Offer(empty, "nothing_to_move", "old-empty")
    add_account(rdb, "old-none", "none@x.org")  # an old account without a collections field
    (none,) = add_users(app_db, "none@x.org")
    assert offer(app_db, rdb, none) == Offer(none, "nothing_to_move", "old-none")
    assert not rdb.exists("collections2") and reports(app_db) == []


def test_an_unknown_app_user(rdb, app_db):
    _alice(rdb, app_db)
    assert offer(app_db, rdb, 424242).to_json()["reason"] == "unknown_app_user"
    with pytest.raises(UnknownAppUser, match="there is no app user with id 424242") as err:
        migrate_one(app_db, rdb, 424242)
    assert err.value.exit_code == 2
    with pytest.raises(UnknownAppUser):
        import_anon(app_db, rdb, 424242, "anon-1")
    assert not rdb.exists("collections2")


def test_malformed_collections_are_the_offers_reason(rdb, app_db):
    (uid,) = add_users(app_db, "bad@x.org")
    add_account(rdb, "old-bad", "bad@x.org")
    add_collections(rdb, "old-bad", b"[{]")
    found = offer(app_db, rdb, uid)
    assert (found.reason, found.problem) == ("malformed_collections_json", "the collections entry is not JSON")


def test_anonymous_collections_are_imported_once(rdb, app_db):
    uid = _alice(rdb, app_db)
    add_collections(rdb, "anon-7", [legacy_collection("a1", "Anonymous", ["BXD:9"])])
    first = import_anon(app_db, rdb, uid, "anon-7")
    assert first.counts["moved"] == 1 and [c["id"] for c in new_value(rdb, uid)] == ["a1"]
    again = import_anon(app_db, rdb, uid, "anon-7")
    assert again.counts["done"] == 1 and again.outcomes[0].user_id == uid
    assert [c["id"] for c in new_value(rdb, uid)] == ["a1"]
    with pytest.raises(RegisteredAccount, match="'old-bob' is a registered account's id"):
        import_anon(app_db, rdb, uid, "old-bob")
    # And the old account's collections still move after the import, merged behind it.
    assert migrate_one(app_db, rdb, uid).counts["moved"] == 1
    assert [c["id"] for c in new_value(rdb, uid)] == ["a1", "c1", "c2"]


def test_the_index_follows_old_accounts_added_and_emails_changed(rdb, app_db):
    uid = _alice(rdb, app_db)
    assert offer(app_db, rdb, uid).reason is None  # builds the index
    # A second account registers with the address: `users` has another number of fields.
    add_account(rdb, "old-alice-2", "alice@example.com")
    assert offer(app_db, rdb, uid).old_ids == ("old-alice", "old-alice-2")
    # Both change their address in place (the number of fields stays): neither holds it any more.
    add_account(rdb, "old-alice", "alice@elsewhere.org")
    add_account(rdb, "old-alice-2", "alice2@elsewhere.org")
    assert offer(app_db, rdb, uid).reason == "no_old_account"
    assert migrate_one(app_db, rdb, uid).counts["no_old_account"] == 1 and new_value(rdb, uid) is None


def test_the_per_user_path_does_not_read_every_old_account(private_redis, app_db):
    _, url = private_redis
    r = redis.Redis.from_url(url)
    uid = _alice(r, app_db)
    pipe = r.pipeline(transaction=False)
    for i in range(3_000):
        pipe.hset("users", f"old-{i}", orjson.dumps({"user_id": f"old-{i}", "email_address": f"u{i}@x.org"}))
    pipe.execute()
    assert offer(app_db, r, uid).reason is None  # builds the index: one HSCAN of `users`
    r.config_resetstat()  # the private server's statistics, nobody else's
    assert offer(app_db, r, uid).collections == 2
    assert migrate_one(app_db, r, uid).counts["moved"] == 1
    stats = r.info("commandstats")
    assert not {"cmdstat_hscan", "cmdstat_hgetall", "cmdstat_hkeys", "cmdstat_hvals", "cmdstat_scan"} & stats.keys()
    assert stats["cmdstat_hmget"]["calls"] <= 6


def test_one_caller_rebuilds_a_stale_index_while_the_others_wait(private_redis, app_db):
    _, url = private_redis
    r = redis.Redis.from_url(url)
    uid = _alice(r, app_db)
    r.set("collections_email_index_lock", "another caller's build")  # another login is rebuilding it
    r.config_resetstat()
    answer = {}
    waiting = threading.Thread(target=lambda: answer.update(offer=offer(app_db, r, uid)))
    waiting.start()
    time.sleep(0.3)
    assert waiting.is_alive()  # waits for the build in progress instead of reading `users` itself
    assert "cmdstat_hscan" not in r.info("commandstats")
    email_index.rebuild(r)  # the other caller's build
    r.delete("collections_email_index_lock")
    waiting.join(5)
    assert answer["offer"].old_id == "old-alice" and answer["offer"].collections == 2
    assert r.info("commandstats")["cmdstat_hscan"]["calls"] == 1  # `users` read once, by that build
