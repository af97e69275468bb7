"""Writes by other clients while the migration runs: none is lost, none makes the move retry."""

from __future__ import annotations

import threading

import orjson
import redis

from app.collections import migrate_all, moves
from app.collections.legacy import read_collections
from app.collections.moves import Move, Mover
from tests.support.collections import add_account, add_collections, add_users, legacy_collection, migrate_one, new_value


def _between_read_and_move(monkeypatch, action) -> list:
    """Run `action` once, after the migration read and normalised the legacy values and before
    its scripts run: another client's write lands in that window."""
    calls = []
    original = moves._execute

    def execute(pipe):
        first = not calls
        calls.append(1)  # before the action: an action that moves too passes through here
        if first:
            action()
        return original(pipe)

    monkeypatch.setattr(moves, "_execute", execute)
    return calls


def test_an_edit_of_the_users_new_key_during_the_migration_is_kept(rdb, app_db, monkeypatch, redis_url):
    (uid,) = add_users(app_db, "a@x.org")
    add_account(rdb, "old-a", "a@x.org")
    add_collections(rdb, "old-a", [legacy_collection("c1", "Old", ["BXD:1"])])
    app = redis.Redis.from_url(redis_url)
    edit = b'[{"id":"n1","name":"Created while migrating","members":["NEW:1"],"num_members":1}]'
    calls = _between_read_and_move(monkeypatch, lambda: app.hset("collections2", str(uid), edit))

    result = migrate_one(app_db, rdb, uid)
    assert calls and result.counts["moved"] == 1
    assert [c["id"] for c in new_value(rdb, uid)] == ["n1", "c1"]
    assert new_value(rdb, uid)[0] == orjson.loads(edit)[0]
    # And the app's next write, a read-modify-write under WATCH, starts from the merged list.
    with app.pipeline() as pipe:
        pipe.watch("collections2")
        current = orjson.loads(pipe.hget("collections2", str(uid)))
        pipe.multi()
        pipe.hset("collections2", str(uid), orjson.dumps([*current, {"id": "n2", "name": "Later", "members": []}]))
        pipe.execute()
    assert [c["id"] for c in new_value(rdb, uid)] == ["n1", "c1", "n2"]


def test_a_legacy_value_changed_after_it_was_read_moves_as_it_now_is(rdb, app_db, monkeypatch, redis_url):
    (uid,) = add_users(app_db, "a@x.org")
    add_account(rdb, "old-a", "a@x.org")
    add_collections(rdb, "old-a", [legacy_collection("c1", "Old", ["BXD:1"])])
    legacy_app = redis.Redis.from_url(redis_url)
    now = orjson.dumps([legacy_collection("c1", "Old", ["BXD:1", "BXD:2"]), legacy_collection("c9", "Added", [])])
    _between_read_and_move(monkeypatch, lambda: legacy_app.hset("collections", "old-a", now))

    migrate_all(rdb, app_db)
    assert [(c["id"], c["members"]) for c in new_value(rdb, uid)] == [("c1", ["BXD:1", "BXD:2"]), ("c9", [])]
    assert rdb.hget("collections_migrated_sha1", "old-a") is not None


def test_writes_to_other_users_fields_during_a_run_are_neither_lost_nor_retried(rdb, app_db, redis_url):
    n = 1_500
    emails = [f"user{i}@x.org" for i in range(n)]
    ids = add_users(app_db, *emails)
    for i, email in enumerate(emails):
        add_account(rdb, f"old-{i}", email)
    pipe = rdb.pipeline(transaction=False)
    for i in range(n):
        pipe.hset("collections", f"old-{i}", orjson.dumps([legacy_collection(f"c{i}", f"N{i}", [f"BXD:{i}"])]))
    pipe.execute()

    stop, written = threading.Event(), []

    def other_app_users():  # users who have no old account keep writing their own fields
        app = redis.Redis.from_url(redis_url)
        k = 0
        while not stop.is_set() or k < 200:
            field = f"other-{k % 50}"
            app.hset("collections2", field, orjson.dumps([{"id": f"o{k}", "name": "x", "members": []}]))
            app.hset("collections", f"anon-{k % 50}", b"[]")
            written.append((field, k))
            k += 1

    thread = threading.Thread(target=other_app_users)
    thread.start()
    try:
        result = migrate_all(rdb, app_db, chunk=100)
    finally:
        stop.set()
        thread.join()
    assert result.counts["moved"] == n and result.counts["reported"] == 0
    for i in (0, n // 2, n - 1):
        assert new_value(rdb, ids[i]) == [{"id": f"c{i}", "name": f"N{i}", "created": "2021-03-05T21:14:00Z",
                                           "changed": "2022-04-11T07:02:00Z", "num_members": 1,
                                           "members": [f"BXD:{i}"]}]
    assert rdb.hlen("collections_migrated") == n
    assert all(len(new_value(rdb, u)) == 1 for u in ids)
    last = {}
    for field, k in written:
        last[field] = k
    for field, k in last.items():
        assert orjson.loads(rdb.hget("collections2", field)) == [{"id": f"o{k}", "name": "x", "members": []}]


def test_two_runs_side_by_side_move_each_account_once(rdb, app_db, redis_url):
    n = 600
    ids = add_users(app_db, *(f"u{i}@x.org" for i in range(n)))
    for i in range(n):
        add_account(rdb, f"old-{i}", f"u{i}@x.org")
        add_collections(rdb, f"old-{i}", [legacy_collection("c", "C", [str(i)])])
    results = []

    def run():
        results.append(migrate_all(redis.Redis.from_url(redis_url), app_db, chunk=50))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.counts["moved"] for r in results) == n
    assert all(new_value(rdb, u) == [{"id": "c", "name": "C", "created": "2021-03-05T21:14:00Z",
                                       "changed": "2022-04-11T07:02:00Z", "num_members": 1, "members": [str(i)]}]
               for i, u in enumerate(ids))


def test_an_account_that_fails_in_the_script_does_not_stop_the_others_in_the_same_run(rdb):
    """Several accounts share a script run; one failing (here: a corrupt index, read because its
    user's new field exists) is reported on its own and nothing of it is written."""
    values = {old: orjson.dumps([legacy_collection(f"{old}-c", "C", ["m"])]) for old in ("old-1", "old-2")}
    for old, value in values.items():
        rdb.hset("collections", old, value)
    rdb.hset("collections2", "1", b"[]")
    broken = Move.read("old-1", 1, values["old-1"])
    broken.collections.packed = lambda: (read_collections(values["old-1"]).packed()[0], b"[[")
    fine = Move.read("old-2", 2, values["old-2"])
    outcomes = Mover(rdb).run([broken, fine], lambda *a: None)
    assert [(o.old_id, o.status) for o in outcomes] == [("old-1", "reported"), ("old-2", "moved")]
    assert outcomes[0].reported[0].reason == "move_failed"
    assert rdb.hget("collections2", "1") == b"[]" and not rdb.hexists("collections_migrated", "old-1")
    assert [c["id"] for c in new_value(rdb, 2)] == ["old-2-c"]


def test_a_login_time_migration_between_the_bulk_runs_read_and_its_move(rdb, app_db, monkeypatch, redis_url):
    (uid,) = add_users(app_db, "a@x.org")
    add_account(rdb, "old-a", "a@x.org")
    add_collections(rdb, "old-a", [legacy_collection("c1", "Old", ["BXD:1"])])
    login = redis.Redis.from_url(redis_url)
    done = []
    calls = _between_read_and_move(monkeypatch, lambda: done.append(migrate_one(app_db, login, uid)))

    bulk = migrate_all(rdb, app_db)
    assert calls and done[0].counts["moved"] == 1
    assert bulk.counts["moved"] == 0 and bulk.counts["done"] == 1
    assert [c["id"] for c in new_value(rdb, uid)] == ["c1"]  # moved once
    assert rdb.hgetall("collections_migrated") == {b"old-a": str(uid).encode()}
