"""Old accounts by email, without reading every old account: GeneNetwork's hash `users` is keyed
by the old id only (GeneNetwork itself found an account by email by reading them all), so orgmig
keeps an index of its own in Redis (docs/collections.md, "The login-time flow"):

- hash `collections_email_index`: the normalised email (`legacy.normalize_email`, the function
  matching uses) -> a JSON list of the old ids holding it;
- hash `collections_email_index_meta`: `users_fields`, the number of fields `users` had when the
  index was built (read before the build reads them), and `built_at`.

A lookup rebuilds the index first when it is missing or `users` has another number of fields now
(an account registered or deleted since), and checks every old id it finds against its current
`users` value: an account whose email changed since no longer holds the address. The rebuild
reads `users` once with HSCAN into a scratch key and renames it over the index, so a lookup
meanwhile reads the previous index whole or the new one whole. One caller rebuilds at a time
(`collections_email_index_lock`); the others wait for it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict

import redis

from app.collections import legacy
from app.collections.moves import raw as _raw
from app.collections.store import KEYS, scan_hash
from app.collections.store import text as as_text

USERS_FIELDS = "users_fields"
# Deletes the lock only while it is still the caller's (its time may have run out).
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
LOCK_MS = 60_000  # how long a rebuild may hold the lock (about a second per 100,000 accounts)


def _ids(value: bytes) -> list[str]:
    # json (not orjson) writes an old id that is not valid UTF-8 as \udcXX escapes and reads it back.
    return json.loads(value)


def rebuild(client: redis.Redis) -> int:
    """The index built again from every field of `users`; the number of addresses in it."""
    fields = client.hlen(KEYS.legacy_users)  # before the scan: an account added meanwhile makes it stale
    by_email: dict[str, list[str]] = defaultdict(list)
    seen: set[str] = set()
    for raw_id, raw in scan_hash(client, KEYS.legacy_users, count=5_000):
        old_id = as_text(raw_id)
        if old_id in seen:
            continue  # HSCAN may return a field twice
        seen.add(old_id)
        try:
            email = legacy.read_account(old_id, raw).email
        except legacy.Malformed:
            continue  # holds no address: matching reports it (malformed_user_json) when it has collections
        if email is not None:
            by_email[email].append(old_id)
    scratch = f"{KEYS.email_index}:building:{uuid.uuid4()}"
    items = [(_raw(e), json.dumps(sorted(ids))) for e, ids in by_email.items()]
    pipe = client.pipeline(transaction=False)
    for start in range(0, len(items), 1_000):
        pipe.hset(scratch, mapping=dict(items[start:start + 1_000]))
    pipe.execute()
    with client.pipeline(transaction=True) as pipe:
        if items:
            pipe.rename(scratch, KEYS.email_index)
        else:
            pipe.delete(KEYS.email_index)
        pipe.hset(KEYS.email_index_meta, mapping={USERS_FIELDS: fields, "built_at": f"{time.time():.3f}"})
        pipe.execute()
    return len(items)


def refresh(client: redis.Redis) -> None:
    """`rebuild`, by one caller at a time: the others (a burst of logins after an account was
    registered in the old application) wait for its build instead of each reading `users` again,
    then use the index it built."""
    token = uuid.uuid4().hex
    if client.set(KEYS.email_index_lock, token, nx=True, px=LOCK_MS):
        try:
            rebuild(client)
        finally:
            client.eval(_RELEASE, 1, KEYS.email_index_lock, token)  # only while it is still ours
        return
    deadline = time.monotonic() + LOCK_MS / 1000
    while client.exists(KEYS.email_index_lock) and time.monotonic() < deadline:
        time.sleep(0.05)


def old_ids(client: redis.Redis, email: str, *also: str) -> tuple[list[str], list[list[bytes | None]]]:
    """The old accounts whose `users` value holds `email` (normalised) now, sorted; and for each
    hash named in `also`, the values of their fields there (read in the same round trip)."""
    pipe = client.pipeline(transaction=False)
    pipe.hlen(KEYS.legacy_users)
    pipe.hget(KEYS.email_index_meta, USERS_FIELDS)
    pipe.hget(KEYS.email_index, _raw(email))
    fields, built_from, found = pipe.execute()
    if built_from is None or int(built_from) != fields:
        refresh(client)
        found = client.hget(KEYS.email_index, _raw(email))
    if found is None:
        return [], [[] for _ in also]
    ids = _ids(found)
    fields = [_raw(o) for o in ids]
    pipe = client.pipeline(transaction=False)
    for key in (KEYS.legacy_users, *also):
        pipe.hmget(key, fields)
    values, *others = pipe.execute()
    keep = [i for i, (old_id, raw) in enumerate(zip(ids, values, strict=True)) if _holds(old_id, raw, email)]
    return [ids[i] for i in keep], [[other[i] for i in keep] for other in others]


def _holds(old_id: str, raw: bytes | None, email: str) -> bool:
    if raw is None:
        return False
    try:
        return legacy.read_account(old_id, raw).email == email
    except legacy.Malformed:
        return False
