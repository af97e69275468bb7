"""Re-keying GeneNetwork's user collections in Redis (docs/collections.md): from hash
`collections`, keyed by the old account's id, to hash `collections2`, keyed by the app's
`"user".id`, matching accounts by email.

- legacy.py    reading and normalising the legacy JSON (names, timestamps)
- matching.py  old accounts to app users by email, or the reason there is none
- store.py     the Redis connection, key names, the scripts, HSCAN
- move.lua     the atomic move of one account; purge.lua the atomic purge of one
- moves.py     running move.lua for batches of accounts and reading its answers
- planner.py   every legacy field decided: move, done, anonymous or reported
- run.py       migrate --all, and the batch step the per-user path shares
- per_user.py  one app user at login: legacy_offer, migrate_for_user, import_anonymous
- email_index.py  old accounts by email, kept in Redis (no scan of every old account)
- report.py    rows in orgmig_report
"""

from app.collections.per_user import (
    Offer,
    RegisteredAccount,
    UnknownAppUser,
    import_anonymous,
    legacy_offer,
    migrate_for_user,
)
from app.collections.planner import Plan, plan
from app.collections.run import Result, migrate_all
from app.collections.store import KEYS, Keys, connect

__all__ = ["KEYS", "Keys", "Offer", "Plan", "RegisteredAccount", "Result", "UnknownAppUser", "connect",
           "import_anonymous", "legacy_offer", "migrate_all", "migrate_for_user", "plan"]
