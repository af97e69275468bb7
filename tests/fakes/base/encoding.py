"""Dates, derived ids, base64url, opaque cursors and compact JSON as the fakes write them."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

UTC = UTC


JSON_TYPE = "application/json; charset=utf-8"


def iso(dt: datetime | None) -> str | None:
    """ISO-8601 UTC with milliseconds and a Z, as all three providers print timestamps."""
    if dt is None:
        return None
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    return dt.isoformat(timespec="milliseconds")[:-6] + "Z"  # "+00:00" -> "Z"


def epoch_ms(dt: datetime) -> int:
    return int(round(dt.timestamp() * 1000))


_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_iso(text: str) -> datetime | None:
    """Parse `YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|±HH:MM]` (naive means UTC); None if invalid."""
    m = _ISO_RE.match(text.strip())
    if not m:
        return None
    y, mo, d, hh, mm, ss, frac, tz = m.groups()
    try:
        micro = int((frac or "0")[:6].ljust(6, "0"))
        dt = datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0), micro, tzinfo=UTC)
    except ValueError:
        return None
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
        dt = datetime.fromtimestamp(dt.timestamp() - offset, UTC)
    return dt


def derived_id(prefix: str, *parts: str, length: int = 20) -> str:
    """A deterministic id of `length` characters (prefix included, the rest [0-9A-Za-z]),
    derived from `parts`."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    need = length - len(prefix)
    while len(digest) * 4 // 3 < need:
        digest += hashlib.sha256(digest).digest()
    return prefix + base64.b64encode(digest, b"Zz")[:need].decode("ascii")


def derived_hex(*parts: str, length: int = 24) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:length]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_cursor(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def decode_cursor(text: str) -> Any:
    """Raise ValueError on anything that is not a cursor this server made."""
    try:
        return json.loads(b64url_decode(text))
    except Exception as exc:
        raise ValueError("invalid cursor") from exc


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
