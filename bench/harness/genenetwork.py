"""GeneNetwork's old accounts with collections, as it wrote them to Redis (hash `users` and hash
`collections`), and the app users holding their emails: 1-4 collections per account, 0-30 members
each, legacy timestamps, names with spaces and non-ASCII letters; about 2% of the accounts have no
email and 0.4% share theirs with another account or another app user; 5% of the app users already
hold a collection in `collections2`; 1,000 anonymous ids."""

from __future__ import annotations

import random
import uuid
from collections import Counter

import orjson
import redis
from sqlalchemy import text

from app.collections.legacy import normalize_email

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
NAMES = ("Liver traits", "  Hippocampus ", "Gènes du foie", "BXD eQTL", "Körpergewicht", "mouse_set_2",
         "Ａｌｃｏｈｏｌ", "Favourites")


def legacy_ts(rng: random.Random) -> str:
    hour = rng.randint(1, 12)
    return (f"{rng.choice(MONTHS)} {rng.randint(1, 28):02d} {rng.randint(2012, 2023)} "
            f"{hour:02d}:{rng.randint(0, 59):02d}{rng.choice(('AM', 'PM'))}")


def seed(n: int, rng: random.Random) -> tuple[dict, dict, dict, list[str], dict[str, int]]:
    """(users, collections, collections2 by app-user index, app user emails, the matchable
    accounts: old id -> app-user index)."""
    users, colls, emails, app_index = {}, {}, [], {}
    for i in range(n):
        old = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        roll = rng.random()
        account = {"user_id": old, "full_name": f"Person {i}", "organization": "GN",
                   "password": {"algorithm": "pbkdf2", "hashed": "x" * 40}, "confirmed": True}
        if roll < 0.02:
            pass  # a GitHub or ORCID login: no email
        elif roll < 0.022 and i:
            account["email_address"] = f"user{i - 1}@bench.example"  # the previous account's address too
        elif roll < 0.024:
            account["email_address"] = f"user{i}@bench.example"
            emails += [f"user{i}@bench.example", f"USER{i}@bench.example "]  # two app users, one address
        else:
            account["email_address"] = rng.choice(("", " ")) + f"User{i}@Bench.example" + rng.choice(("", "  "))
            emails.append(f"user{i}@bench.example")
            app_index[old] = len(emails) - 1
        users[old] = orjson.dumps(account)
        colls[old] = orjson.dumps([{
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "name": rng.choice(NAMES), "created_timestamp": legacy_ts(rng), "changed_timestamp": legacy_ts(rng),
            "num_members": (k := rng.randint(0, 30)),
            "members": [f"BXDPublish:{rng.randint(10_000, 99_999)}:BXD" for _ in range(k)],
        } for _ in range(rng.randint(1, 4))])
    # Matchable: the only account with its address, which one app user holds.
    olds = Counter(normalize_email(orjson.loads(v).get("email_address")) for v in users.values())
    apps = Counter(normalize_email(e) for e in emails)
    matchable = {old: idx for old, idx in app_index.items()
                 if olds[(key := normalize_email(emails[idx]))] == 1 and apps[key] == 1}
    existing = {}
    for idx in rng.sample(range(len(emails)), len(emails) // 20):
        existing[idx] = orjson.dumps([{"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                                       "name": "Made in the new app", "created": "2024-01-01T00:00:00Z",
                                       "changed": "2024-01-01T00:00:00Z", "num_members": 0, "members": []}])
    for _ in range(1_000):
        colls[f"anon-{uuid.UUID(int=rng.getrandbits(128), version=4)}"] = orjson.dumps(
            [{"id": "a", "name": "Anonymous", "created_timestamp": legacy_ts(rng),
              "changed_timestamp": legacy_ts(rng), "num_members": 0, "members": []}])
    return users, colls, existing, emails, matchable


def hset_all(r: redis.Redis, key: str, mapping: dict) -> None:
    items = list(mapping.items())
    pipe = r.pipeline(transaction=False)
    for i in range(0, len(items), 1_000):
        pipe.hset(key, mapping=dict(items[i:i + 1_000]))
    pipe.execute()


def seed_stores(engine, r: redis.Redis, emails: list[str], users: dict, colls: dict) -> list[int]:
    """The app users holding `emails` (their ids, in order), and Redis flushed and given the old
    accounts and their collections."""
    with engine.begin() as conn:
        ids = conn.execute(text(
            "INSERT INTO \"user\" (keycloak_user_id, email) SELECT 'kc-' || n, e"
            " FROM unnest(CAST(:emails AS text[])) WITH ORDINALITY AS t(e, n) ORDER BY n RETURNING id"),
            {"emails": emails}).scalars().all()
        conn.execute(text('ANALYZE "user"'))
    r.flushdb()
    hset_all(r, "users", users)
    hset_all(r, "collections", colls)
    return ids
