"""JSON for large API pages and snapshot batches: orjson when installed (several times faster on
the megabyte-sized member pages), the standard library otherwise. Same results either way."""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # the standard library does the same work, more slowly
    orjson = None


def loads(data: bytes | str) -> Any:
    if orjson is not None:
        return orjson.loads(data)
    return json.loads(data)


def dumps(obj: Any) -> str:
    if orjson is not None:
        return orjson.dumps(obj).decode("utf-8")
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


DecodeError = (ValueError, UnicodeDecodeError)
