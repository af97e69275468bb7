"""Reading and normalising GeneNetwork's legacy values: an old account (hash `users`) and an
account's collections (hash `collections`), both JSON.

A legacy collection is `{id, name, created_timestamp, changed_timestamp, num_members, members}`
with timestamps like `Mar 05 2021 09:14PM` (UTC, minute precision, no zone). The moved one is
`{id, name, created, changed, num_members, members}`: the name trimmed and in Unicode NFC, the
timestamps ISO 8601 in UTC (`2021-03-05T21:14:00Z`). A timestamp that cannot be read becomes
null and is reported with its original text: never invented. Keys other than the six are carried
over unchanged after them. A value that is not JSON, or not of that shape, is malformed: the
account is reported and skipped, and nothing of it moves.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
# GeneNetwork wrote them with "%b %d %Y %I:%M%p"; single digits and spacing are read leniently.
_LEGACY_TS = re.compile(r"\s*([A-Za-z]{3})\s+(\d{1,2}),?\s+(\d{4})\s+(\d{1,2}):(\d{2})\s*([AaPp][Mm])\s*")
# Both spellings GeneNetwork's parser accepts: the legacy one first.
TIMESTAMP_KEYS = (("created", "created_timestamp"), ("changed", "changed_timestamp"))
KNOWN_KEYS = frozenset(("id", "name", "num_members", "members", "created", "changed",
                        "created_timestamp", "changed_timestamp"))


class Malformed(ValueError):
    """A legacy value that cannot be read as what it should be; the message says where (never a
    value, which may be personal data)."""


def normalize_email(value: object) -> str | None:
    """The email as matching compares it: NFC, trimmed, lower case; None when missing or blank."""
    if not isinstance(value, str):
        return None
    key = unicodedata.normalize("NFC", value).strip().lower()
    return key or None


def normalize_name(value: str) -> str:
    return unicodedata.normalize("NFC", value).strip()


# Lookups for the exact shape GeneNetwork wrote: month names (any case), 12-hour clock to 24,
# valid days per month (29 February checked against the year), minutes.
_MONTH_NUM = {k: f"{v:02d}" for name, v in MONTHS.items() for k in (name, name.title(), name.upper())}
_HOUR24 = {f"{h:02d}{half}": f"{h % 12 + (12 if half.upper() == 'PM' else 0):02d}"
           for h in range(1, 13) for half in ("AM", "PM", "am", "pm")}
_DAYS = {f"{m:02d}": {f"{d:02d}" for d in range(1, n + 1)}
         for m, n in zip(range(1, 13), (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31), strict=True)}
_MINUTES = {f"{m:02d}" for m in range(60)}


def iso_timestamp(raw: str) -> str | None:
    """A legacy timestamp (`Mar 05 2021 09:14PM`, UTC) or an ISO 8601 one as ISO 8601 UTC with a
    `Z`; None when it is neither (or names a day that does not exist)."""
    # The exact shape GeneNetwork wrote, read by position and lookups (reading timestamps is
    # otherwise most of a migration's time); anything else by the lenient pattern below.
    if len(raw) == 19 and raw[3] == " " and raw[6] == " " and raw[11] == " " and raw[14] == ":":
        month, day, year, minute = _MONTH_NUM.get(raw[:3]), raw[4:6], raw[7:11], raw[15:17]
        hour = _HOUR24.get(raw[12:14] + raw[17:])
        if month is not None and hour is not None and day in _DAYS[month] and minute in _MINUTES \
                and year.isascii() and year.isdigit() and year != "0000":
            if month == "02" and day == "29" and not _leap(int(year)):
                return None
            return f"{year}-{month}-{day}T{hour}:{minute}:00Z"
    return _lenient(raw)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _lenient(raw: str) -> str | None:
    m = _LEGACY_TS.fullmatch(raw)
    if m:
        month = MONTHS.get(m.group(1).lower())
        hour, minute = int(m.group(4)), int(m.group(5))
        if month is None or not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if m.group(6).lower() == "pm" else 0)
        try:
            when = datetime(int(m.group(3)), month, int(m.group(2)), hour, minute, tzinfo=UTC)
        except ValueError:
            return None
    else:
        try:
            when = datetime.fromisoformat(raw.strip())
        except ValueError:
            return None
        # A naive ISO timestamp holds UTC, like the legacy ones.
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    text = f"{when.year:04d}-{when.month:02d}-{when.day:02d}T{when.hour:02d}:{when.minute:02d}:{when.second:02d}"
    return text + (f".{when.microsecond:06d}Z" if when.microsecond else "Z")


@dataclass(frozen=True)
class OldAccount:
    old_id: str
    email: str | None  # normalised; None when the account has none


def read_account(old_id: str, raw: bytes) -> OldAccount:
    """An entry of hash `users`; Malformed when it is not a JSON object."""
    value = _json(raw, "users", dict, "a JSON object")
    return OldAccount(old_id, normalize_email(value.get("email_address")))


def _json(raw: bytes, entry: str, kind: type, what: str):
    """The entry of hash `entry` parsed; Malformed when it is not JSON, or not `what`."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Malformed(f"the {entry} entry is not JSON") from None
    if not isinstance(value, kind):
        raise Malformed(f"the {entry} entry is not {what}")
    return value


@dataclass
class Collection:
    """One collection in its new shape. `id_json` is the id as JSON text and `rest` the object
    after its id member (`"name":...}`): the move script puts them together, choosing another id
    when the account's new key already holds this one."""

    id: str | int
    id_json: bytes
    rest: bytes
    name: str
    members: list

    def json(self, new_id: str | int | None = None) -> bytes:
        ident = self.id_json if new_id is None else orjson.dumps(new_id)
        return b'{"id":' + ident + b"," + self.rest


@dataclass
class Collections:
    items: list[Collection] = field(default_factory=list)
    # (collection id, "created"|"changed", the legacy text or None when absent)
    bad_timestamps: list[tuple[str | int, str, str | None]] = field(default_factory=list)

    @property
    def members(self) -> int:
        return sum(len(c.members) for c in self.items)

    def packed(self) -> tuple[bytes, bytes]:
        """What move.lua takes: the collections as JSON objects joined by commas, and where each
        one is in it (JSON: [[id as text, first byte, last byte, length of the id's JSON], ...],
        counting from 1 as Lua does)."""
        parts, index, at = [], [], 1
        for c in self.items:
            text = c.json()
            parts.append(text)
            index.append((str(c.id), at, at + len(text) - 1, len(c.id_json)))
            at += len(text) + 1
        return b",".join(parts), orjson.dumps(index)


def read_collections(raw: bytes) -> Collections:
    """An entry of hash `collections` in its new shape; Malformed when it is not a JSON list of
    collections (objects with an id, a name and a list of members)."""
    value = _json(raw, "collections", list, "a JSON list")
    out = Collections()
    for n, item in enumerate(value):
        out.items.append(_collection(n, item, out.bad_timestamps))
    return out


def _collection(n: int, item: object, bad: list) -> Collection:
    if not isinstance(item, dict):
        raise Malformed(f"collection #{n} is not a JSON object")
    ident = item.get("id")
    if isinstance(ident, bool) or not isinstance(ident, (str, int)) or ident == "":
        raise Malformed(f"collection #{n} has no id (a string or an integer)")
    name, members = item.get("name"), item.get("members")
    if not isinstance(name, str):
        raise Malformed(f"collection #{n} has no name (a string)")
    if not isinstance(members, list):
        raise Malformed(f"collection #{n} has no members list")
    count = item.get("num_members")
    if isinstance(count, bool) or not isinstance(count, int):
        count = len(members)
    name = normalize_name(name)
    body: dict = {"name": name}
    for new, old in TIMESTAMP_KEYS:
        raw = item.get(old, item.get(new))
        when = iso_timestamp(raw) if isinstance(raw, str) else None
        if when is None:
            bad.append((ident, new, raw if isinstance(raw, str) or raw is None else orjson.dumps(raw).decode()))
        body[new] = when
    body["num_members"] = count
    body["members"] = members
    if len(item) > 6 or not item.keys() <= KNOWN_KEYS:
        for key in item.keys() - KNOWN_KEYS:
            body[key] = item[key]
    return Collection(ident, orjson.dumps(ident), orjson.dumps(body)[1:], name, members)
